"""Statements compiled once and run on the unit of work's own asyncpg connection.

SQLAlchemy builds, cache-keys and post-processes every statement on every execution; on
the hottest paths (GET by id, upsert, the outbox insert) that machinery cost several
times the database's own work (bench/README.md). A :class:`CompiledStatement` is a Core
statement compiled once for the asyncpg dialect, with SQLAlchemy's own bind processors
for its parameters, executed on the driver connection under the session — so it runs in
the same transaction (or read-only session) as everything else, with asyncpg's prepared
statement cache. Rows come back as ``asyncpg.Record`` (a read-only mapping).

They run on an :data:`Executor`: a session (through its driver connection) or a driver
connection itself, inside a ``Database.driver_unit_of_work`` transaction.

Statements whose column set varies (an insert of the fields a caller sent) are compiled
once per column set and kept in a small LRU (:class:`StatementCache`).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Generic, TypeAlias, TypeVar, cast

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault, Table

DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
_DRIVER_KEY = "patron.driver_connection"

Processor = Callable[[Any], Any]
# What prepared statements run on: a unit of work's session or its bare driver connection.
Executor: TypeAlias = AsyncSession | asyncpg.Connection


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
    ``tests/kit/test_sql.py`` pins this against SQLAlchemy upgrades.

    Looked up once per session and remembered in ``session.info``; sessions live for one
    unit of work, so the connection cannot change under it.
    """
    if isinstance(executor, asyncpg.Connection):
        return executor
    session = executor
    connection: asyncpg.Connection | None = session.info.get(_DRIVER_KEY)
    if connection is None:
        sa_connection = await session.connection()
        raw = await sa_connection.get_raw_connection()
        adapter: Any = raw.dbapi_connection
        if adapter._transaction is None:
            await adapter._start_transaction()
        connection = raw.driver_connection
        session.info[_DRIVER_KEY] = connection
    return connection
