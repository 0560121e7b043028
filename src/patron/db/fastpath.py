"""The driver-level fast path: the one module below SQLAlchemy's execution path
(decision 0010, ``docs/decisions/0010-driver-fast-path.md``).

SQLAlchemy builds, cache-keys and post-processes every statement on every execution; on
the hottest paths (GET by id, upsert, the outbox insert, the relay's claim and mark) that
machinery cost several times the database's own work (bench/README.md). Here:

- :class:`CompiledStatement`: a Core statement compiled once for the asyncpg dialect,
  with SQLAlchemy's own bind processors for its parameters, run on an :data:`Executor`
  with asyncpg's prepared statement cache. Rows come back as ``asyncpg.Record`` (a
  read-only mapping). :class:`PreparedQuery` is one that must carry the ``:tenant``
  parameter (bound only by :class:`patron.db.repository.TenantScopedRepository`).
- :class:`StatementCache`: statements whose column set varies (an insert of the fields a
  caller sent), compiled once per column set, in a small LRU.
- :data:`Executor`: what they run on: a unit of work's session (through its driver
  connection, :func:`driver_connection`, inside the session's transaction) or a bare
  driver connection of :func:`driver_reads` / :func:`driver_unit_of_work`, units of work
  with no ``AsyncSession`` at all (``Database`` exposes them).

It leans on SQLAlchemy internals: the asyncpg adapter's ``_transaction`` and
``_start_transaction`` (:func:`driver_connection`), the compiler's ``positiontup``,
``binds`` and ``insert_prefetch``/``update_prefetch`` (:class:`CompiledStatement`) and
``greenlet_spawn`` (:func:`_give_back`). pyproject.toml pins SQLAlchemy's minor version
and ``tests/db/test_sqlalchemy_internals.py`` fails with a message naming this module when
an upgrade moves them.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Hashable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Generic, TypeAlias, TypeVar, cast

import asyncpg
import sqlalchemy
from sqlalchemy import BindParameter, bindparam
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import PoolProxiedConnection, QueuePool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault, Table
from sqlalchemy.util import greenlet_spawn

from patron.db.disconnects import unit_connection, unit_transaction
from patron.tenancy import TenantId

DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
DRIVER_KEY = "patron.driver_connection"

Processor = Callable[[Any], Any]
# What prepared statements run on: a unit of work's session or its bare driver connection.
Executor: TypeAlias = AsyncSession | asyncpg.Connection

# The tenant of a prepared query: bound by TenantScopedRepository, nowhere else.
TENANT_PARAM: BindParameter[str] = bindparam("tenant")


class SQLAlchemyInternalsChanged(RuntimeError):
    """The installed SQLAlchemy no longer has an internal this module relies on."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"SQLAlchemy {sqlalchemy.__version__} changed {what}, which the driver fast path "
            "(patron.db.fastpath, docs/decisions/0010-driver-fast-path.md) relies on: adapt "
            "the module before moving the SQLAlchemy pin in pyproject.toml"
        )


def _constant(value: Any) -> Any:
    return value


class CompiledStatement:
    """A Core statement compiled once: ``sql`` with ``$n`` parameters named ``names``.

    ``raw`` names parameters passed to the driver as they are (e.g. a JSON document that
    is already serialised), skipping SQLAlchemy's bind processor for them.
    """

    __slots__ = ("defaults", "names", "processors", "sql")

    def __init__(self, stmt: ClauseElement, *, raw: Iterable[str] = ()) -> None:
        compiled = cast(
            SQLCompiler,
            stmt.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True}),
        )
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        skip = frozenset(raw)
        processors: list[Processor | None] = []
        for name in self.names:
            bind_type = compiled.binds[name].type
            processors.append(
                None if name in skip else bind_type.dialect_impl(DIALECT).bind_processor(DIALECT)
            )
        self.processors = tuple(processors)
        # Columns the statement does not set but whose model has a Python-side default:
        # SQLAlchemy fills those in at execution ("prefetch"), so do the same here.
        # (SQLAlchemy does not report them for a statement with a data-modifying CTE:
        # there the caller passes every value, see python_defaults.)
        self.defaults: dict[str, Callable[[], Any]] = {}
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            default = column.default if column in compiled.insert_prefetch else column.onupdate
            make = _default_maker(default)
            if make is not None:
                self.defaults[column.key] = make

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """Positional driver arguments from ``params`` (``KeyError`` names a missing one)."""
        out = []
        for name, process in zip(self.names, self.processors, strict=True):
            if name in params:
                value = params[name]
            else:
                default = self.defaults.get(name)
                if default is None:
                    raise KeyError(name)
                value = default()
            out.append(process(value) if process is not None else value)
        return out

    async def fetchrow(self, executor: Executor, params: Mapping[str, Any]) -> Any:
        """The first row (an ``asyncpg.Record``) or None."""
        return await (await driver_connection(executor)).fetchrow(self.sql, *self.args(params))

    async def fetch(self, executor: Executor, params: Mapping[str, Any]) -> list[Any]:
        """All rows (``asyncpg.Record``)."""
        return list(await (await driver_connection(executor)).fetch(self.sql, *self.args(params)))

    async def execute(self, executor: Executor, params: Mapping[str, Any]) -> None:
        """Run it for its effect."""
        await (await driver_connection(executor)).execute(self.sql, *self.args(params))

    async def execute_count(self, executor: Executor, params: Mapping[str, Any]) -> int:
        """Run an ``INSERT``/``UPDATE``/``DELETE``; returns the rows it touched (from the
        command tag, e.g. ``DELETE 42``)."""
        status: str = await (await driver_connection(executor)).execute(
            self.sql, *self.args(params)
        )
        return int(status.rsplit(" ", 1)[-1])


def _default_maker(default: Any) -> Callable[[], Any] | None:
    if isinstance(default, ScalarElementColumnDefault):
        return functools.partial(_constant, default.arg)
    if isinstance(default, CallableColumnDefault):
        # SQLAlchemy wraps a zero-argument default to take the execution context
        return functools.partial(default.arg, cast(Any, None))
    return None


def python_defaults(table: Table) -> dict[str, Callable[[], Any]]:
    """The Python-side insert defaults of ``table``'s columns (``Column(default=...)``),
    by column name: each a function making the value."""
    out: dict[str, Callable[[], Any]] = {}
    for column in table.columns:
        make = _default_maker(column.default)
        if make is not None:
            out[column.name] = make
    return out


StatementT = TypeVar("StatementT", bound=CompiledStatement)


class StatementCache(Generic[StatementT]):
    """Compiled statements by key (e.g. the set of columns an insert writes), LRU-bounded.

    ``build(key)`` makes the Core statement, ``kind`` compiles it (``CompiledStatement``
    or a subclass such as the tenant-checked ``PreparedQuery``).
    """

    def __init__(
        self,
        build: Callable[[Any], ClauseElement],
        kind: Callable[[ClauseElement], StatementT],
        size: int = 128,
    ) -> None:
        self._build = build
        self._kind = kind
        self._size = size
        self._items: OrderedDict[Hashable, StatementT] = OrderedDict()

    def get(self, key: Hashable) -> StatementT:
        """The statement for ``key``, compiled on first use."""
        found = self._items.get(key)
        if found is None:
            found = self._items[key] = self._kind(self._build(key))
            if len(self._items) > self._size:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        return found


async def driver_connection(executor: Executor) -> asyncpg.Connection:
    """The asyncpg connection of ``executor``: itself, or the one under a session, inside
    the session's transaction.

    SQLAlchemy's asyncpg adapter sends ``BEGIN`` lazily, with the first statement *it*
    executes; a statement sent straight to the driver would run before it, in autocommit.
    So the adapter's transaction is started here first (a no-op for AUTOCOMMIT sessions).
    ``tests/db/test_sqlalchemy_internals.py`` pins this against SQLAlchemy upgrades.

    Looked up once per session and remembered in ``session.info``; sessions live for one
    unit of work, so the connection cannot change under it.
    """
    if isinstance(executor, asyncpg.Connection):
        return executor
    session = executor
    connection: asyncpg.Connection | None = session.info.get(DRIVER_KEY)
    if connection is None:
        sa_connection = await session.connection()
        raw = await sa_connection.get_raw_connection()
        adapter: Any = raw.dbapi_connection
        try:
            begun = adapter._transaction is not None
            start = adapter._start_transaction
        except AttributeError as exc:
            raise SQLAlchemyInternalsChanged("the asyncpg adapter's transaction") from exc
        if not begun:
            await start()
        connection = raw.driver_connection
        session.info[DRIVER_KEY] = connection
    return connection


class PreparedQuery(CompiledStatement):
    """A tenant statement compiled once (a :class:`CompiledStatement`) that must filter
    (or stamp) with the ``:tenant`` parameter (:data:`TENANT_PARAM`, or
    ``patron.db.repository.tenant_filter``), which only
    :class:`patron.db.repository.TenantScopedRepository` binds. ``ValueError`` otherwise."""

    def __init__(self, stmt: ClauseElement) -> None:
        super().__init__(stmt)
        if TENANT_PARAM.key not in self.names:
            raise ValueError("a prepared tenant query must use tenant_filter() or TENANT_PARAM")


def require_session(executor: Executor) -> AsyncSession:
    """``executor`` as an ORM session. Raises ``RuntimeError`` for a driver connection: the
    work asked for needs a session unit of work (a programming error, not bad input)."""
    if isinstance(executor, asyncpg.Connection):
        raise RuntimeError("this needs a session unit of work; this one is a driver transaction")
    return cast(AsyncSession, executor)


async def _give_back(engine: AsyncEngine, pooled: PoolProxiedConnection) -> None:
    """Return a connection checked out with ``engine.raw_connection()`` to its pool.

    Only an overflow connection coming back to a full pool is closed, and closing is IO
    that SQLAlchemy's asyncpg adapter can only do inside ``greenlet_spawn``; any other
    return is a queue put, done directly (a greenlet per request costs ~9 us). Nothing
    runs between the check and the put: no ``await`` in between. A connection still in a
    transaction (its ``ROLLBACK`` failed, or was cancelled) is invalidated, never pooled.
    """
    connection: asyncpg.Connection = pooled.driver_connection
    if connection.is_closed() or connection.is_in_transaction():
        await greenlet_spawn(pooled.invalidate)
    pool = engine.sync_engine.pool
    if isinstance(pool, QueuePool) and pool.checkedin() < pool.size():
        pooled.close()
    else:
        await greenlet_spawn(pooled.close)


async def _checkout(engine: AsyncEngine) -> tuple[PoolProxiedConnection, asyncpg.Connection]:
    pooled = await engine.raw_connection()
    connection: asyncpg.Connection = pooled.driver_connection
    return pooled, connection


@asynccontextmanager
async def _driver_transaction(
    engine: AsyncEngine, tenant: TenantId, *, read_only: bool
) -> AsyncIterator[asyncpg.Connection]:
    async with unit_transaction(
        functools.partial(_checkout, engine),
        functools.partial(_give_back, engine),
        tenant,
        read_only=read_only,
    ) as (_, connection):
        yield connection


def driver_reads(
    engine: AsyncEngine, tenant: TenantId
) -> AbstractAsyncContextManager[asyncpg.Connection]:
    """A pooled asyncpg connection for reads of ``tenant``'s rows, in one ``READ ONLY``
    transaction (so the tenant setting is transaction-local; see :mod:`patron.db.rls`).

    The lightest unit of work: no ``AsyncSession`` and no SQLAlchemy ``Connection``
    around it, just a connection checked out of ``engine``'s own pool (so the pool size
    and the ``patron_app`` role are shared with every other unit of work). Three round
    trips: ``BEGIN`` with the tenant, the read, ``COMMIT``. PostgreSQL refuses writes and
    row locks in it. Statements go through
    :class:`patron.db.repository.TenantScopedRepository` (prepared queries only).
    """
    return _driver_transaction(engine, tenant, read_only=True)


def driver_unit_of_work(
    engine: AsyncEngine, tenant: TenantId
) -> AbstractAsyncContextManager[asyncpg.Connection]:
    """One transaction on a pooled asyncpg connection, scoped to ``tenant``: a unit of
    work without an ``AsyncSession``, for writes made of prepared statements only (the
    upsert; repositories built on the connection refuse ORM work, see
    :class:`patron.db.repository.TenantScopedRepository`).

    Commits when the block exits normally, rolls back when it raises. A connection still
    inside a transaction after that (a failed ``ROLLBACK``, a cancellation) is
    invalidated instead of going back to the pool.
    """
    return _driver_transaction(engine, tenant, read_only=False)


@asynccontextmanager
async def driver_statements(engine: AsyncEngine) -> AsyncIterator[asyncpg.Connection]:
    """A pooled asyncpg connection with no transaction: each statement is its own
    (PostgreSQL's implicit transaction, committed with the statement), and the
    connection carries no tenant, so tenant tables read empty through it.

    For reads done in one statement by a tenant function (``customer_by_id(:tenant,
    ...)``, decision 0016), which sets the tenant for its own statement only: one round
    trip where :func:`driver_reads` takes three. A plain prepared query on this
    connection sees no tenant rows (row-level security denies: the safe failure);
    writes are refused by the policies' ``WITH CHECK``. Outages: 503 as in every unit
    (:func:`patron.db.disconnects.unit_connection`), without the retry at ``BEGIN``.
    """
    async with unit_connection(
        functools.partial(_checkout, engine), functools.partial(_give_back, engine)
    ) as (_, connection):
        yield connection
