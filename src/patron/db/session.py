"""Units of work: one session and one transaction per request, job or CLI command.

The transaction sets ``app.tenant_id`` (``set_config(..., is_local => true)``) so that the
row-level security policies see the tenant; without it every tenant table reads empty.
Services and repositories never commit; the unit of work does, or rolls back on error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patron.db.engine import create_sessionmaker
from patron.tenancy import TenantId

_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant, true)")


class Database:
    """The application engine and its session factory (one per process)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)

    @asynccontextmanager
    async def unit_of_work(self, tenant: TenantId | None) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, scoped to ``tenant`` for row-level security.

        Commits when the block exits normally, rolls back when it raises.
        """
        async with self.sessionmaker() as session, session.begin():
            if tenant is not None:
                await session.execute(_SET_TENANT, {"tenant": tenant})
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
