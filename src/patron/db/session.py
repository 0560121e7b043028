"""Units of work: one session and one transaction per request, job or CLI command.

The transaction sets ``app.tenant_id`` (``set_config(..., is_local => true)``) so that the
row-level security policies see the tenant; without it every tenant table reads empty.
Services and repositories never commit; the unit of work does, or rolls back on error.

Read-only requests use :meth:`Database.read_only` instead: no ``BEGIN``/``COMMIT``, each
statement is its own transaction, and the tenant is set for the connection's session.
That saves two of a GET's four round trips. It is safe because *every* checkout sets
``app.tenant_id`` before its first statement (a tenantless unit of work clears it), so a
value left on a pooled connection is always overwritten before it could be used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patron.db.engine import create_sessionmaker
from patron.tenancy import TenantId

_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant, true)")
_SET_TENANT_SESSION = text("SELECT set_config('app.tenant_id', :tenant, false)")


class Database:
    """The application engine and its session factory (one per process)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
        # Same pool, no implicit BEGIN: for read-only units of work.
        self.autocommit_sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    @asynccontextmanager
    async def unit_of_work(self, tenant: TenantId | None) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, scoped to ``tenant`` for row-level security.

        Commits when the block exits normally, rolls back when it raises.
        """
        async with self.sessionmaker() as session, session.begin():
            # '' for no tenant: shadows a value left on the connection by a read-only use.
            await session.execute(_SET_TENANT, {"tenant": tenant or ""})
            yield session

    @asynccontextmanager
    async def read_only(self, tenant: TenantId) -> AsyncIterator[AsyncSession]:
        """A session for reads of ``tenant``'s rows, without an explicit transaction.

        Each statement runs in its own implicit transaction (autocommit), so use it only
        for work that a single statement at a time can do correctly: reads.
        """
        async with self.autocommit_sessionmaker() as session:
            await session.execute(_SET_TENANT_SESSION, {"tenant": tenant})
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
