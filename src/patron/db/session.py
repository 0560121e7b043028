"""Units of work: one session and one transaction per request, job or CLI command.

Row-level security reads the tenant from the ``app.tenant_id`` setting; without it every
tenant table reads empty. The setting is kept per connection (session level) and the
tenant last set on each pooled connection is remembered in ``connection.info``, so a
request for the same tenant as the connection's previous one costs no round trip at all.
The remembered value is dropped whenever a transaction does not commit (a rollback undoes
a ``set_config`` made inside it), and every unit of work checks it before its first
statement — a tenantless one sets ``''`` — so a value left on a pooled connection is
never used by the wrong request.

Services and repositories never commit; the unit of work does, or rolls back on error.
Read-only requests use :meth:`Database.read_only`: no ``BEGIN``/``COMMIT`` at all.

The driver units (:meth:`Database.driver_reads`, :meth:`Database.driver_unit_of_work`)
check a connection out of the engine's pool themselves, so they also give it back the way
the engine would: returning an overflow connection to a full pool closes it, and
SQLAlchemy's asyncpg adapter can only do that IO from within a greenlet (``_give_back``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import PoolProxiedConnection, QueuePool
from sqlalchemy.util import greenlet_spawn

from patron.db.engine import create_sessionmaker
from patron.kit.sql import driver_connection
from patron.tenancy import TenantId

_SET_TENANT = "SELECT set_config('app.tenant_id', $1, false)"
_TENANT_KEY = "patron.tenant_id"


async def _remember_tenant(
    connection: asyncpg.Connection, info: MutableMapping[Any, Any], tenant: str
) -> None:
    """Make ``tenant`` the RLS tenant of ``connection``, unless ``info`` (the pooled
    connection's own dict) says it already is."""
    if info.get(_TENANT_KEY) != tenant:
        info.pop(_TENANT_KEY, None)
        await connection.execute(_SET_TENANT, tenant)
        info[_TENANT_KEY] = tenant


async def _use_tenant(session: AsyncSession, tenant: str) -> MutableMapping[Any, Any]:
    """Make ``tenant`` the session connection's RLS tenant; returns the connection's info."""
    info = (await session.connection()).info
    await _remember_tenant(await driver_connection(session), info, tenant)
    return info


async def _give_back(engine: AsyncEngine, pooled: PoolProxiedConnection) -> None:
    """Return a connection checked out with ``engine.raw_connection()`` to its pool.

    Only an overflow connection coming back to a full pool is closed, and closing is IO
    that SQLAlchemy's asyncpg adapter can only do inside ``greenlet_spawn``; any other
    return is a queue put, done directly (a greenlet per request costs ~9 us). Nothing
    runs between the check and the put: no ``await`` in between.
    """
    pool = engine.sync_engine.pool
    if isinstance(pool, QueuePool) and pool.checkedin() < pool.size():
        pooled.close()
    else:
        await greenlet_spawn(pooled.close)


class Database:
    """The application engine and its session factories (one per process)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
        # Same pool, no implicit BEGIN: for read-only units of work.
        self.autocommit_sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    @asynccontextmanager
    async def unit_of_work(self, tenant: TenantId | None) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction, scoped to ``tenant`` for row-level security
        (``None``: no tenant, so tenant tables read empty).

        Commits when the block exits normally, rolls back when it raises.
        """
        info: MutableMapping[Any, Any] | None = None
        try:
            async with self.sessionmaker() as session, session.begin():
                info = await _use_tenant(session, tenant or "")
                yield session
        except BaseException:
            if info is not None:
                info.pop(_TENANT_KEY, None)  # the rollback may have undone the setting
            raise

    @asynccontextmanager
    async def read_only(self, tenant: TenantId) -> AsyncIterator[AsyncSession]:
        """A session for reads of ``tenant``'s rows, without an explicit transaction.

        Each statement runs in its own implicit transaction (autocommit), so use it only
        for work that a single statement at a time can do correctly: reads.
        """
        async with self.autocommit_sessionmaker() as session:
            await _use_tenant(session, tenant)
            yield session

    @asynccontextmanager
    async def driver_reads(self, tenant: TenantId) -> AsyncIterator[asyncpg.Connection]:
        """A pooled asyncpg connection for single-statement reads of ``tenant``'s rows.

        The lightest unit of work: no ``AsyncSession`` and no SQLAlchemy ``Connection``
        around it, just a connection checked out of the engine's own pool (so the pool
        size, the ``patron_app`` role and the remembered tenant are shared with every other
        unit of work). Each statement runs in its own implicit transaction, so use it only
        for reads that one statement answers (GET by id). Statements go through
        :class:`patron.kit.repository.TenantScopedRepository` (prepared queries only).
        """
        pooled = await self.engine.raw_connection()
        try:
            connection: asyncpg.Connection = pooled.driver_connection
            await _remember_tenant(connection, pooled.info, tenant)
            yield connection
        finally:
            await _give_back(self.engine, pooled)  # nothing to roll back: no BEGIN was sent

    @asynccontextmanager
    async def driver_unit_of_work(self, tenant: TenantId) -> AsyncIterator[asyncpg.Connection]:
        """One transaction on a pooled asyncpg connection, scoped to ``tenant``: a unit of
        work without an ``AsyncSession``, for writes made of prepared statements only (the
        upsert; repositories built on the connection refuse ORM work, see
        :class:`patron.kit.repository.TenantScopedRepository`).

        Commits when the block exits normally, rolls back when it raises. A connection
        still inside a transaction after that (a failed ``ROLLBACK``, a cancellation) is
        invalidated instead of going back to the pool.
        """
        pooled = await self.engine.raw_connection()
        try:
            connection: asyncpg.Connection = pooled.driver_connection
            try:
                async with connection.transaction():
                    await _remember_tenant(connection, pooled.info, tenant)
                    yield connection
            except BaseException:
                pooled.info.pop(_TENANT_KEY, None)  # the rollback undid the setting
                if connection.is_in_transaction() or connection.is_closed():
                    await greenlet_spawn(pooled.invalidate)
                raise
        finally:
            await _give_back(self.engine, pooled)

    async def dispose(self) -> None:
        await self.engine.dispose()
