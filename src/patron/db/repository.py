"""The one place where tenant scoping is written (STYLE.md "Tenancy").

A :class:`TenantScopedRepository` is built with a :class:`~patron.tenancy.TenantId` and adds
``tenant_id = :tenant`` to every statement it makes and stamps it on every row it creates.
Row-level security in PostgreSQL is the second wall behind it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from patron.db.base import Base
from patron.db.fastpath import TENANT_PARAM, Executor, PreparedQuery, require_session
from patron.tenancy import TenantId

ModelT = TypeVar("ModelT", bound=Base)


def tenant_filter(model: Any) -> ColumnElement[bool]:
    """``model.tenant_id = :tenant`` for a :class:`~patron.db.fastpath.PreparedQuery` built
    at import time (the repository binds ``:tenant``)."""
    clause: ColumnElement[bool] = model.tenant_id == TENANT_PARAM
    return clause


class TenantScopedRepository(Generic[ModelT]):
    """Base of repositories for tenant tables. Subclasses set ``model``.

    Built on a unit of work's session, or on the driver connection of a driver unit
    (``Database.driver_reads``, ``Database.driver_unit_of_work``): then only prepared
    queries (:meth:`fetchrow`, :meth:`fetch`, :meth:`execute`) run, and :attr:`session`
    raises. The executor is :attr:`executor`; :attr:`session` never holds a driver
    connection.
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
        """``SELECT`` of ``entities`` (default: the model) filtered to this tenant (on the
        model's ``tenant_id``: add a ``select_from`` for a join led by the model)."""
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
