"""The request scope dependency: authenticate, authorise, resolve the tenant, open the unit
of work. Every tenant route takes exactly one ``Scope`` so its rules are in one place and
the route-table tests can read them back (``Scope.roles``, ``Scope.customer_self``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from patron.auth.principal import Principal, Role
from patron.context import AppContext
from patron.errors import Forbidden, NotFound, Unauthorized
from patron.http.idempotency import begin_idempotent_request
from patron.kit.sql import Executor
from patron.tenancy import TenantId, resolve_tenant

# GET and HEAD never write: they run without BEGIN/COMMIT (see Database.read_only).
_READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass
class RequestContext:
    """What a route handler works with: who, for which tenant, in which transaction.

    A :class:`Scope` route gets ``session``; an :class:`EndpointScope` route gets neither
    ``session`` nor ``connection`` until it opens its unit of work itself
    (:meth:`unit_of_work`, :meth:`driver_reads`), once it knows which kind it needs.
    """

    principal: Principal
    tenant: TenantId
    app: AppContext
    unit_session: AsyncSession | None = None
    connection: asyncpg.Connection | None = None

    @property
    def session(self) -> AsyncSession:
        """The unit of work's session. Raises ``RuntimeError`` when the request has none (a
        driver unit or read, or an :class:`EndpointScope` route before it opened one)."""
        if self.unit_session is None:
            raise RuntimeError("this request has no session unit of work")
        return self.unit_session

    @property
    def driver(self) -> asyncpg.Connection:
        """The driver connection of a driver unit or read. Raises ``RuntimeError`` else."""
        if self.connection is None:
            raise RuntimeError("this request has no driver connection")
        return self.connection

    @asynccontextmanager
    async def unit_of_work(self, *, driver: bool) -> AsyncIterator[None]:
        """Open this request's unit of work (:class:`EndpointScope` routes): a driver
        transaction (:meth:`Database.driver_unit_of_work`; :attr:`driver` is set) when
        ``driver``, else a session one (:attr:`session` is set). Commits when the block
        exits normally, rolls back when it raises."""
        self._require_no_unit()
        try:
            if driver:
                async with self.app.db.driver_unit_of_work(self.tenant) as connection:
                    self.connection = connection
                    yield
            else:
                async with self.app.db.unit_of_work(self.tenant) as session:
                    self.unit_session = session
                    yield
        finally:
            self.unit_session = self.connection = None

    @asynccontextmanager
    async def driver_reads(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled driver connection for single-statement reads of this request's tenant
        (:meth:`Database.driver_reads`; :attr:`driver` is set meanwhile)."""
        self._require_no_unit()
        try:
            async with self.app.db.driver_reads(self.tenant) as connection:
                self.connection = connection
                yield connection
        finally:
            self.connection = None

    def _require_no_unit(self) -> None:
        if self.unit_session is not None or self.connection is not None:
            raise RuntimeError("this request already has a unit of work")

    @property
    def executor(self) -> Executor:
        """The unit of work's session, or its driver connection when it has no session."""
        if self.unit_session is not None:
            return self.unit_session
        return self.driver

    def check_tenant_claim(self, where: str, value: str | None) -> None:
        """A ``tenant_id`` given in a body or query must be the request's tenant (else 403)."""
        if value is not None and value != self.tenant:
            raise Forbidden(f"{where} names a tenant this credential may not act for")


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
    """Dependency for a tenant route: the caller, the tenant and a unit of work.

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
        return RequestContext(principal, tenant, ctx)

    async def __call__(self, request: Request) -> AsyncIterator[RequestContext]:
        ctx = await self.context(request)
        if request.method in _READ_METHODS:
            async with ctx.app.db.read_only(ctx.tenant) as session:
                ctx.unit_session = session
                yield ctx
            return
        async with ctx.app.db.unit_of_work(ctx.tenant) as session:
            ctx.unit_session = session
            yield ctx


class EndpointScope(Scope):
    """A :class:`Scope` that opens no unit of work: the route opens the one it needs with
    :meth:`RequestContext.unit_of_work` or :meth:`RequestContext.driver_reads`.

    For the hottest routes (GET by id, upsert): a plain dependency, so FastAPI skips the
    machinery of a ``yield`` dependency, and the route can choose a driver unit (no
    ``AsyncSession``) when prepared statements are all it runs.
    """

    async def __call__(self, request: Request) -> RequestContext:  # type: ignore[override]
        return await self.context(request)


def _path_customer(request: Request) -> uuid.UUID | None:
    raw = request.path_params.get("customer_id")
    try:
        return uuid.UUID(str(raw)) if raw is not None else None
    except ValueError:
        return None
