"""The one place where tenant scoping is written (STYLE.md "Tenancy").

A :class:`TenantScopedRepository` is built with a :class:`~patron.tenancy.TenantId` and adds
``tenant_id = :tenant`` to every statement it makes and stamps it on every row it creates.
Row-level security in PostgreSQL is the second wall behind it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

import asyncpg
from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement

from patron.db.base import Base
from patron.kit.sql import CompiledStatement, Executor
from patron.tenancy import TenantId

ModelT = TypeVar("ModelT", bound=Base)

# The tenant of a prepared query: bound by TenantScopedRepository.fetchrow, nowhere else.
TENANT_PARAM: BindParameter[str] = bindparam("tenant")


def tenant_filter(model: Any) -> ColumnElement[bool]:
    """``model.tenant_id = :tenant`` for a :class:`PreparedQuery` built at import time."""
    clause: ColumnElement[bool] = model.tenant_id == TENANT_PARAM
    return clause


def require_session(executor: Executor) -> AsyncSession:
    """``executor`` as an ORM session. Raises ``RuntimeError`` for a driver connection: the
    work asked for needs a session unit of work (a programming error, not bad input)."""
    if isinstance(executor, asyncpg.Connection):
        raise RuntimeError("this needs a session unit of work; this one is a driver transaction")
    return cast(AsyncSession, executor)


class PreparedQuery(CompiledStatement):
    """A tenant statement compiled once for asyncpg and run on the session's own connection.

    For the hottest statements: it skips SQLAlchemy's per-execution statement building,
    cache-key generation and result processing, yet runs inside the same transaction (or
    read-only session) as everything else (see :mod:`patron.kit.sql`). The statement must
    filter (or stamp) with :func:`tenant_filter`'s ``:tenant`` parameter, which only
    :class:`TenantScopedRepository` binds.
    """

    def __init__(self, stmt: ClauseElement) -> None:
        super().__init__(stmt)
        if "tenant" not in self.names:
            raise ValueError("a prepared tenant query must use tenant_filter() or TENANT_PARAM")


class TenantScopedRepository(Generic[ModelT]):
    """Base of repositories for tenant tables. Subclasses set ``model``.

    Built on a unit of work's session, or on the driver connection of a
    ``Database.driver_unit_of_work``: then only prepared queries (:meth:`fetchrow`,
    :meth:`fetch`, :meth:`execute`) run, and :attr:`session` raises.
    """

    model: type[ModelT]

    def __init__(self, executor: Executor, tenant: TenantId) -> None:
        self.executor = executor
        self.tenant = tenant

    @property
    def session(self) -> AsyncSession:
        """The ORM session. Raises ``RuntimeError`` in a driver unit of work."""
        return require_session(self.executor)

    def select(self, *entities: Any) -> Select[Any]:
        """``SELECT`` of ``entities`` (default: the model) filtered to this tenant."""
        stmt = select(*entities) if entities else select(self.model)
        return stmt.where(self.model.tenant_id == self.tenant)  # type: ignore[attr-defined]

    def scoped(self, stmt: Any, model: Any = None) -> Any:
        """Add this tenant's filter to an ``update``/``delete``/``select`` on ``model``."""
        target: Any = model if model is not None else self.model
        return stmt.where(target.tenant_id == self.tenant)

    def stamp(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` for an insert, with this tenant's id."""
        return {**values, "tenant_id": self.tenant}

    async def fetchrow(self, query: PreparedQuery, **params: Any) -> Any:
        """First row of a prepared query for this tenant (an ``asyncpg.Record``) or None."""
        return await query.fetchrow(self.executor, {**params, "tenant": self.tenant})

    async def fetch(self, query: PreparedQuery, **params: Any) -> list[Any]:
        """All rows of a prepared query for this tenant (``asyncpg.Record``)."""
        return await query.fetch(self.executor, {**params, "tenant": self.tenant})

    async def execute(self, query: PreparedQuery, **params: Any) -> None:
        """Run a prepared statement for this tenant."""
        await query.execute(self.executor, {**params, "tenant": self.tenant})

    def add(self, obj: ModelT) -> ModelT:
        """Stage a new row, stamped with this tenant."""
        obj.tenant_id = self.tenant  # type: ignore[attr-defined]
        self.session.add(obj)
        return obj
