"""The one place where tenant scoping is written (STYLE.md "Tenancy").

A :class:`TenantScopedRepository` is built with a :class:`~patron.tenancy.TenantId` and adds
``tenant_id = :tenant`` to every statement it makes and stamps it on every row it creates.
Row-level security in PostgreSQL is the second wall behind it.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from patron.db.base import Base
from patron.tenancy import TenantId

ModelT = TypeVar("ModelT", bound=Base)

# The tenant of a prepared query: bound by TenantScopedRepository.fetchrow, nowhere else.
TENANT_PARAM: BindParameter[str] = bindparam("tenant")
_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]


def tenant_filter(model: Any) -> ColumnElement[bool]:
    """``model.tenant_id = :tenant`` for a :class:`PreparedQuery` built at import time."""
    clause: ColumnElement[bool] = model.tenant_id == TENANT_PARAM
    return clause


class PreparedQuery:
    """A read statement compiled once for asyncpg and run on the session's own connection.

    For the hottest reads: it skips SQLAlchemy's per-execution statement building, cache-key
    generation and result processing, yet runs inside the same transaction (or read-only
    session) as everything else. Rows come back as ``asyncpg.Record`` (a mapping).
    The statement must filter with :func:`tenant_filter`.
    """

    def __init__(self, stmt: Select[Any]) -> None:
        compiled = stmt.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        if "tenant" not in self.names:
            raise ValueError("a prepared tenant query must use tenant_filter()")


class TenantScopedRepository(Generic[ModelT]):
    """Base of repositories for tenant tables. Subclasses set ``model``."""

    model: type[ModelT]

    def __init__(self, session: AsyncSession, tenant: TenantId) -> None:
        self.session = session
        self.tenant = tenant

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
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        values = {**params, "tenant": self.tenant}
        return await raw.driver_connection.fetchrow(query.sql, *(values[n] for n in query.names))  # type: ignore[union-attr]

    def add(self, obj: ModelT) -> ModelT:
        """Stage a new row, stamped with this tenant."""
        obj.tenant_id = self.tenant  # type: ignore[attr-defined]
        self.session.add(obj)
        return obj
