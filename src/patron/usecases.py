"""The use-case layer's foundation: who calls (:class:`ServiceContext`), the unit of work a
use case runs in (:class:`Unit`), and the base every domain service builds on.

Every transport (HTTP routes, gRPC servicers, webhook receivers, jobs, CLI commands) turns
its request into a :class:`ServiceContext` (the process's :class:`AppContext`, the
principal and the tenant), builds a service from it (``CustomerService(ctx)``: one builder,
the constructor) and calls one operation. The operation owns its unit of work: a method
marked :func:`writes` opens a transaction (:func:`unit_of_work`) and commits it before it
returns; one marked :func:`reads` opens a read unit. So a transport never chooses, opens
or commits a transaction, and every transport behaves the same (STYLE.md "Transactions").

Units nest by joining: a use case called while another one's unit is open (a note's
``add`` asks the customer service to lock the customer) runs in that same unit, so one
use case is one transaction however many services it calls. The open unit is kept in a
:class:`contextvars.ContextVar`, which asyncio copies per task: a unit is never shared
between concurrent tasks by accident.

Unit kinds: a session unit (SQLAlchemy ``AsyncSession`` in a transaction) serves all
work; a driver unit (a bare asyncpg connection, :mod:`patron.db.session`'s driver units)
serves only the prepared statements of the hot paths (GET by id, upsert), where a
benchmark showed the ORM's cost (``docs/decisions/``); a statements unit
(``reads(statements=True)``) is a driver connection with no transaction at all, for a read
that is one call of a tenant function (GET by id, decision 0016). Repositories take
:attr:`Unit.executor`, which is any of them.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from patron.auth.principal import Principal
from patron.context import AppContext
from patron.db.fastpath import Executor, require_session
from patron.errors import Forbidden
from patron.tenancy import TenantId

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="Service")


@dataclass
class ServiceContext:
    """Who calls a use case and for which tenant: what every transport hands a service.

    ``app`` is the process's context (settings, database, keys, limiters); ``principal``
    the authenticated caller (a staff member, a service, a customer, or the system for
    jobs); ``tenant`` the one tenant the call acts for (``tenancy.resolve_tenant`` for
    requests, ``tenancy.trusted_tenant`` for jobs and the CLI).
    """

    app: AppContext
    principal: Principal
    tenant: TenantId

    def check_tenant_claim(self, where: str, value: str | None) -> None:
        """A ``tenant_id`` named in a body or query must be this call's tenant (API.md
        "Conventions"). Raises :class:`Forbidden` (403) otherwise; ``where`` names the
        place (``"body tenant_id"``)."""
        if value is not None and value != self.tenant:
            raise Forbidden(f"{where} names a tenant this credential may not act for")


@dataclass(slots=True)
class Unit:
    """One open unit of work of one call: its context and its executor.

    ``executor`` is the transaction's ``AsyncSession`` (session units) or asyncpg
    connection (driver units); ``writes`` is False for read units (``READ ONLY``
    transactions).
    """

    ctx: ServiceContext
    executor: Executor
    writes: bool

    @property
    def session(self) -> AsyncSession:
        """The unit's ``AsyncSession``. Raises ``RuntimeError`` in a driver unit
        (:func:`patron.db.fastpath.require_session`)."""
        return require_session(self.executor)


_current: ContextVar[Unit | None] = ContextVar("patron_unit", default=None)


def current_unit() -> Unit | None:
    """The unit of work open in this task, if any."""
    return _current.get()


def _joinable(ctx: ServiceContext, *, write: bool) -> Unit | None:
    """The open unit a new use case of ``ctx`` joins, or None to open its own.

    A unit of another tenant is never joined (RuntimeError: a use case must not act for
    two tenants in one transaction); a write inside a read unit is a programming error.
    """
    unit = _current.get()
    if unit is None:
        return None
    if unit.ctx.tenant != ctx.tenant:
        raise RuntimeError("a use case of another tenant is running in this unit of work")
    if write and not unit.writes:
        raise RuntimeError("a write use case was called inside a read unit")
    return unit


def _executor(
    ctx: ServiceContext, *, write: bool, driver: bool, statements: bool = False
) -> AbstractAsyncContextManager[Executor]:
    """The database's unit of the kind asked for (:class:`patron.db.session.Database`)."""
    db = ctx.app.db
    if statements and not write:
        return db.driver_statements()
    if write:
        return db.driver_unit_of_work(ctx.tenant) if driver else db.unit_of_work(ctx.tenant)
    return db.driver_reads(ctx.tenant) if driver else db.read_only(ctx.tenant)


@asynccontextmanager
async def _unit(
    ctx: ServiceContext, *, write: bool, driver: bool, statements: bool = False
) -> AsyncIterator[Unit]:
    joined = _joinable(ctx, write=write)
    if joined is not None:
        yield joined
        return
    async with _executor(ctx, write=write, driver=driver, statements=statements) as executor:
        token = _current.set(unit := Unit(ctx, executor, writes=write))
        try:
            yield unit
        finally:
            _current.reset(token)


def unit_of_work(ctx: ServiceContext, *, driver: bool = False) -> AbstractAsyncContextManager[Unit]:
    """Join the open unit, or open a transaction for ``ctx.tenant`` that commits when the
    block exits normally and rolls back when it raises.

    ``driver`` asks for a driver unit (prepared statements only); a session unit already
    open is joined all the same (prepared statements run on its connection too).
    """
    return _unit(ctx, write=True, driver=driver)


def read_unit(ctx: ServiceContext, *, driver: bool = False) -> AbstractAsyncContextManager[Unit]:
    """Join the open unit (read or write), or open a read unit for ``ctx.tenant``: a
    ``READ ONLY`` transaction (PostgreSQL refuses writes and row locks in it). ``driver``
    asks for a bare pooled connection (``Database.driver_reads``) instead of an
    ``AsyncSession``."""
    return _unit(ctx, write=False, driver=driver)


class Service:
    """Base of the domain services: built from a :class:`ServiceContext` (the one
    builder: ``XService(ctx)``), its operations marked :func:`writes` or :func:`reads`.

    Inside an operation, :attr:`unit` is the open unit of work and :attr:`executor` /
    :attr:`session` its connection; repositories are built from them per call.
    """

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @property
    def tenant(self) -> TenantId:
        return self.ctx.tenant

    @property
    def actor(self) -> Principal:
        return self.ctx.principal

    @property
    def app(self) -> AppContext:
        return self.ctx.app

    @property
    def unit(self) -> Unit:
        """The open unit of work. Raises ``RuntimeError`` outside an operation."""
        unit = _current.get()
        if unit is None:
            raise RuntimeError(f"{type(self).__name__} was used outside a unit of work")
        return unit

    @property
    def executor(self) -> Executor:
        return self.unit.executor

    @property
    def session(self) -> AsyncSession:
        return self.unit.session


Operation = Callable[Concatenate[S, P], Coroutine[Any, Any, R]]


def _operation(
    *, write: bool, driver: bool, statements: bool = False
) -> Callable[[Operation[S, P, R]], Operation[S, P, R]]:
    def decorate(method: Operation[S, P, R]) -> Operation[S, P, R]:
        @functools.wraps(method)
        async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            async with _unit(self.ctx, write=write, driver=driver, statements=statements):
                return await method(self, *args, **kwargs)

        return run

    return decorate


def writes(*, driver: bool = False) -> Callable[[Operation[S, P, R]], Operation[S, P, R]]:
    """Mark a service method as a write use case: it runs in :func:`unit_of_work` (joined
    or its own), so its changes and outbox events commit together or not at all."""
    return _operation(write=True, driver=driver)


def reads(
    *, driver: bool = False, statements: bool = False
) -> Callable[[Operation[S, P, R]], Operation[S, P, R]]:
    """Mark a service method as a read use case: it runs in :func:`read_unit` (joined or
    its own) and must not write.

    ``statements``: its own unit is a pooled driver connection with no transaction and
    no tenant (``Database.driver_statements``), for a read that is one statement calling
    a tenant function (``customer_by_id``, decision 0016); any other tenant query in it
    reads nothing. Joined units are used as they are.
    """
    return _operation(write=False, driver=driver or statements, statements=statements)
