"""The SQLAlchemy internals the driver fast path relies on (decision 0010).

patron.db.fastpath reaches below SQLAlchemy's public API: the asyncpg adapter's lazily
started transaction (``_transaction``, ``_start_transaction``), the compiler's parameter
order and prefetched defaults, ``greenlet_spawn``. pyproject.toml pins SQLAlchemy's minor
version; these tests make an upgrade that moves any of it fail here, with a message
naming the module to adapt, instead of somewhere far away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from patron.db.engine import create_app_engine, create_sessionmaker
from patron.db.fastpath import CompiledStatement, SQLAlchemyInternalsChanged, driver_connection
from patron.events import outbox
from tests.conftest import make_settings

ADAPT = f"SQLAlchemy {sqlalchemy.__version__}: adapt patron.db.fastpath (decision 0010)"
NOW = CompiledStatement(text("SELECT now() AS tx"))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_app_engine(make_settings(database_pool_size=1), database_url)
    yield engine
    await engine.dispose()


async def test_the_asyncpg_adapter_still_begins_lazily_where_the_fast_path_looks(
    engine: AsyncEngine,
) -> None:
    # A non-AUTOCOMMIT session, as the relay's: the adapter has sent no BEGIN yet.
    async with create_sessionmaker(engine)() as session, session.begin():
        raw = await (await session.connection()).get_raw_connection()
        adapter: Any = raw.dbapi_connection
        assert hasattr(adapter, "_transaction"), ADAPT
        assert hasattr(adapter, "_start_transaction"), ADAPT
        assert adapter._transaction is None, ADAPT  # lazily: nothing sent so far
        connection = await driver_connection(session)
        assert connection is raw.driver_connection
        assert adapter._transaction is not None, ADAPT  # driver_connection began it
        # a prepared statement and the ORM's own statement share the one transaction
        prepared = (await NOW.fetchrow(session, {}))["tx"]
        orm = (await session.execute(text("SELECT now()"))).scalar_one()
        assert connection.is_in_transaction(), ADAPT
    assert prepared == orm, ADAPT


async def test_a_missing_internal_is_named(engine: AsyncEngine) -> None:
    async with create_sessionmaker(engine)() as session:
        raw = await (await session.connection()).get_raw_connection()
        adapter: Any = raw.dbapi_connection
        saved = adapter._transaction
        del adapter._transaction  # what an upgrade that renames it looks like
        try:
            with pytest.raises(SQLAlchemyInternalsChanged, match=r"patron\.db\.fastpath"):
                await driver_connection(session)
        finally:
            adapter._transaction = saved


def test_the_compiler_still_reports_parameter_order_and_prefetched_defaults() -> None:
    # outbox._INSERT leaves ``attempts`` to the model's Python default (insert_prefetch)
    assert outbox._INSERT.names[0] == "p_id", ADAPT  # positiontup: the $n order
    assert "attempts" in outbox._INSERT.defaults, ADAPT
    assert outbox._INSERT.defaults["attempts"]() == 0, ADAPT
