"""The request scope dependency: authenticate, authorise, resolve the tenant, open the unit
of work. Every tenant route takes exactly one ``Scope`` so its rules are in one place and
the route-table tests can read them back (``Scope.roles``, ``Scope.customer_self``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from patron.auth.principal import Principal, Role
from patron.context import AppContext
from patron.errors import Forbidden, NotFound, Unauthorized
from patron.http.idempotency import begin_idempotent_request
from patron.tenancy import resolve_tenant
from patron.usecases import ServiceContext, read_unit, unit_of_work

# GET and HEAD never write: their unit is a READ ONLY transaction (Database.read_only).
_READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass
class RequestContext(ServiceContext):
    """The :class:`ServiceContext` of one HTTP request, as route handlers get it.

    An :class:`EndpointScope` route opens no unit of work: the service operation it calls
    owns one. A :class:`Scope` route runs inside the unit its dependency opened (the
    request's transaction, :attr:`session`), which the services it calls join.
    """

    unit_session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        """The request's unit of work session (:class:`Scope` routes). Raises
        ``RuntimeError`` on an :class:`EndpointScope` route."""
        if self.unit_session is None:
            raise RuntimeError("this request has no session unit of work")
        return self.unit_session


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

    async def __call__(self, request: Request) -> AsyncIterator[RequestContext]:
        ctx = await self.context(request)
        opener = read_unit if request.method in _READ_METHODS else unit_of_work
        async with opener(ctx) as unit:
            ctx.unit_session = unit.session
            yield ctx


class EndpointScope(Scope):
    """A :class:`Scope` that opens no unit of work: the route opens the one it needs with
    :meth:`RequestContext.unit_of_work` or :meth:`RequestContext.driver_reads`.

    For routes whose service operations own their unit of work (the customer routes): a
    plain dependency, so FastAPI skips the machinery of a ``yield`` dependency, and the
    operation can choose a driver unit (no ``AsyncSession``) when prepared statements
    are all it runs.
    """

    async def __call__(self, request: Request) -> RequestContext:  # type: ignore[override]
        return await self.context(request)


def _path_customer(request: Request) -> uuid.UUID | None:
    raw = request.path_params.get("customer_id")
    try:
        return uuid.UUID(str(raw)) if raw is not None else None
    except ValueError:
        return None
