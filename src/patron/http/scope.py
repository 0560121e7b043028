"""The request scope dependency: authenticate, authorise, resolve the tenant, claim the
``Idempotency-Key``. Every tenant route takes exactly one ``Scope`` so its rules are in one
place and the route-table tests can read them back (``Scope.roles``,
``Scope.customer_self``). It opens no unit of work: the service operation the route calls
owns one (:mod:`patron.usecases`, decision 0012).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import Request

from patron.auth.principal import Principal, Role
from patron.context import AppContext
from patron.errors import Forbidden, NotFound, Unauthorized
from patron.http.idempotency import begin_idempotent_request
from patron.tenancy import resolve_tenant
from patron.usecases import ServiceContext


@dataclass
class RequestContext(ServiceContext):
    """The :class:`ServiceContext` of one HTTP request, as route handlers get it: they
    build services from it (``CustomerService(ctx)``) and call one operation."""


def app_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


async def authenticate(request: Request) -> Principal:
    """The caller, from ``Authorization: Bearer`` or ``X-API-Key``; cached on the request.

    Raises :class:`Unauthorized` when neither is present or the credential is invalid.
    """
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    ctx = app_context(request)
    api_key = request.headers.get("x-api-key")
    authorization = request.headers.get("authorization", "")
    if api_key:
        principal = await ctx.api_keys.authenticate(ctx.db, api_key)
    elif authorization[:7].lower() == "bearer ":
        if ctx.jwks is None:
            raise Unauthorized("bearer tokens are not accepted: JWKS_URL is not configured")
        principal = await ctx.jwks.verify(authorization[7:].strip())
    else:
        raise Unauthorized("missing credentials: send Authorization: Bearer <JWT> or X-API-Key")
    request.state.principal = principal
    return principal


class Scope:
    """Dependency for a tenant route: the caller, the tenant and a unit of work (the
    request's transaction; services called by the route join it).

    ``roles`` may call it; with ``customer_self`` the customer role may too, but only for
    the customer named by the ``customer_id`` path parameter (any other id is 404, so the
    existence of other customers is not revealed). GET and HEAD get a read-only session
    (``Database.read_only``), other methods a transaction that commits after the route.
    """

    def __init__(self, *roles: Role, customer_self: bool = False) -> None:
        self.roles = frozenset(roles)
        self.customer_self = customer_self

    async def context(self, request: Request) -> RequestContext:
        """Authenticate, authorise, resolve the tenant and start idempotency (POST with
        ``Idempotency-Key``): a :class:`RequestContext` with no unit of work yet.

        Raises :class:`Unauthorized`, :class:`Forbidden` or :class:`NotFound`.
        """
        principal = await authenticate(request)
        tenant = resolve_tenant(
            principal,
            request.headers.get("x-tenant-id"),
            [("query tenant_id", v) for v in request.query_params.getlist("tenant_id")],
        )
        if not principal.has_any(self.roles):
            if not (self.customer_self and Role.CUSTOMER in principal.roles):
                raise Forbidden("this role may not call this operation")
            if _path_customer(request) != principal.customer_id:
                raise NotFound("customer not found")
        ctx = app_context(request)
        request.state.tenant = tenant
        if request.method == "POST" and "idempotency-key" in request.headers:
            await begin_idempotent_request(ctx.db, request, principal, tenant)
        return RequestContext(ctx, principal, tenant)

    async def __call__(self, request: Request) -> RequestContext:
        # a plain dependency (no ``yield``): FastAPI runs it without an exit stack
        return await self.context(request)


def _path_customer(request: Request) -> uuid.UUID | None:
    raw = request.path_params.get("customer_id")
    try:
        return uuid.UUID(str(raw)) if raw is not None else None
    except ValueError:
        return None
