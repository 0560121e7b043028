"""Units of work: one session and one transaction per request, job or CLI command.

Row-level security reads the tenant from the ``app.tenant_id`` setting; without it every
tenant table reads empty. Every unit of work, of every kind, runs in a transaction that
sets it transaction-locally in its ``BEGIN`` (:func:`patron.db.rls.tenant_transaction`),
so no connection ever goes back to the pool holding a tenant.

Session units use a session on an AUTOCOMMIT engine, so SQLAlchemy's asyncpg adapter
sends no ``BEGIN``/``COMMIT`` of its own; the unit sends them itself on the session's
driver connection, with the tenant setting in the same message as ``BEGIN`` (one round
trip, as a plain ``BEGIN`` costs). The ORM works as in any transaction (flushes,
savepoints); pending changes are flushed before ``COMMIT``.

Services and repositories never commit; the unit of work does, or rolls back on error.
The driver units (:meth:`Database.driver_reads`, :meth:`Database.driver_unit_of_work`)
are the fast path's (:mod:`patron.db.fastpath`).

Every unit raises :class:`patron.errors.DatabaseUnavailable` (503) when its connection is
lost or cannot be made, and starts once more on a fresh connection when a pooled one is
found dead at ``BEGIN`` (:func:`patron.db.disconnects.unit_transaction`, decision 0014).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from patron.db import fastpath
from patron.db.disconnects import unit_transaction
from patron.db.engine import create_sessionmaker
from patron.tenancy import TenantId


class Database:
    """The application engine and its units of work (one per process)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # Same pool, no BEGIN/COMMIT from SQLAlchemy: the units send their own (see above).
        self.sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    async def _checkout(self) -> tuple[AsyncSession, asyncpg.Connection]:
        """A new session and its driver connection (checked out of the pool)."""
        session = self.sessionmaker()
        try:
            return session, await fastpath.driver_connection(session)
        except BaseException:
            await self._release(session)
            raise

    @staticmethod
    async def _release(session: AsyncSession) -> None:
        """Close ``session`` (shielded from cancellation, as ``async with`` does), giving
        its connection back; a closed one, or one still inside a transaction, is
        invalidated instead: never pool a connection inside a transaction."""
        async with session:
            connection: asyncpg.Connection | None = session.info.get(fastpath.DRIVER_KEY)
            if connection is not None and (
                connection.is_closed() or connection.is_in_transaction()
            ):
                await session.invalidate()

    @asynccontextmanager
    async def _session_unit(self, tenant: str, *, read_only: bool) -> AsyncIterator[AsyncSession]:
        unit = unit_transaction(self._checkout, self._release, tenant, read_only=read_only)
        async with unit as (session, _):
            yield session
            await session.flush()  # pending ORM changes belong to this transaction

    def unit_of_work(self, tenant: TenantId | None) -> AbstractAsyncContextManager[AsyncSession]:
        """A session inside one transaction, scoped to ``tenant`` for row-level security
        (``None``: no tenant, so tenant tables read empty).

        Commits when the block exits normally, rolls back when it raises.
        """
        return self._session_unit(tenant or "", read_only=False)

    def read_only(self, tenant: TenantId) -> AbstractAsyncContextManager[AsyncSession]:
        """A session for reads of ``tenant``'s rows, in one ``READ ONLY`` transaction
        (PostgreSQL refuses writes and row locks in it). GET and HEAD requests use it."""
        return self._session_unit(tenant, read_only=True)

    def driver_reads(self, tenant: TenantId) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled asyncpg connection for reads of ``tenant``'s rows, without a session
        (:func:`patron.db.fastpath.driver_reads`)."""
        return fastpath.driver_reads(self.engine, tenant)

    def driver_statements(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled asyncpg connection with no transaction and no tenant, for one-statement
        reads through tenant functions (:func:`patron.db.fastpath.driver_statements`)."""
        return fastpath.driver_statements(self.engine)

    def driver_unit_of_work(
        self, tenant: TenantId
    ) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """One transaction on a pooled asyncpg connection, for writes made of prepared
        statements only (:func:`patron.db.fastpath.driver_unit_of_work`)."""
        return fastpath.driver_unit_of_work(self.engine, tenant)

    async def dispose(self) -> None:
        await self.engine.dispose()
