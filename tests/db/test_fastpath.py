"""Prepared statements on the session's driver connection (patron.db.fastpath), and the
driver unit of work they can run in without a session (Database.driver_unit_of_work).

They bypass SQLAlchemy's execution path, so these tests pin what that must not lose: the
unit of work's transaction (SQLAlchemy's asyncpg adapter begins lazily) and the model's
column defaults.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from patron.db.engine import create_app_engine
from patron.db.fastpath import CompiledStatement, Executor
from patron.db.session import Database
from patron.events import outbox
from patron.events.types import EventType
from patron.identities.repository import IdentityRepository
from patron.identities.schemas import IdentityKey, IdentityKind
from patron.kit.ids import new_id
from patron.tenancy import TenantId, trusted_tenant
from tests.conftest import make_settings
from tests.db.rows import insert_outbox_event

NOW = CompiledStatement(text("SELECT now() AS tx, clock_timestamp() AS wall"))


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[Database]:
    """A Database whose pool has one connection: every unit of work reuses it."""
    engine = create_app_engine(
        make_settings(database_pool_size=1, database_max_overflow=0), database_url
    )
    yield Database(engine)
    await engine.dispose()


async def _one_committed_one_failed(
    unit: Callable[[TenantId], AbstractAsyncContextManager[Executor]],
    tenant: str,
    db: asyncpg.Pool,
) -> list[dict[str, Any]]:
    """Record an event in one unit that commits and one that raises after its write;
    returns the data of the tenant's outbox rows."""
    scoped = trusted_tenant(tenant)
    async with unit(scoped) as executor:
        await outbox.record(executor, scoped, EventType.CUSTOMER_DELETED, None, {"n": 1})

    async def failing_use_case() -> None:
        async with unit(scoped) as executor:
            await outbox.record(executor, scoped, EventType.CUSTOMER_DELETED, None, {"n": 2})
            raise RuntimeError("the use case fails after its write")

    with pytest.raises(RuntimeError):
        await failing_use_case()
    rows = await db.fetch("SELECT data FROM outbox_events WHERE tenant_id = $1", tenant)
    return [dict(r["data"]) for r in rows]


async def test_prepared_statements_run_inside_the_unit_of_works_transaction(
    one_connection: Database, tenant: str
) -> None:
    scoped = trusted_tenant(tenant)
    async with one_connection.unit_of_work(scoped) as session:
        first = await NOW.fetchrow(session, {})
        second = await NOW.fetchrow(session, {})
    # now() is the transaction's start: equal within one transaction, not across two
    assert first["tx"] == second["tx"]
    assert second["wall"] > first["wall"]


async def test_a_failed_unit_of_work_rolls_back_prepared_writes(
    one_connection: Database, tenant: str, db: asyncpg.Pool
) -> None:
    written = await _one_committed_one_failed(one_connection.unit_of_work, tenant, db)
    assert written == [{"n": 1}]


def test_column_defaults_of_the_model_are_filled_in() -> None:
    args = outbox._INSERT.args(
        {
            "p_id": "id",
            "p_tenant_id": "t",
            "p_type": "x",
            "p_source": "s",
            "p_subject": None,
            "p_time": "now",
            "p_data": "{}",
            "p_trace_id": None,
        }
    )
    assert outbox._INSERT.names[args.index(0)] == "attempts"  # OutboxEvent.attempts default


def test_a_missing_parameter_is_named() -> None:
    with pytest.raises(KeyError, match="p_type"):
        outbox._INSERT.args({"p_id": "id"})


async def test_driver_reads_follow_the_tenant_on_a_reused_connection(
    one_connection: Database, tenant: str, other_tenant: str, db: asyncpg.Pool
) -> None:
    await insert_outbox_event(db, tenant)
    seen = []
    for current in (tenant, other_tenant, tenant, tenant):
        async with one_connection.driver_reads(trusted_tenant(current)) as connection:
            seen.append(
                (
                    await connection.fetchval("SELECT current_setting('app.tenant_id')"),
                    await connection.fetchval("SELECT count(*) FROM outbox_events"),
                )
            )
    # row-level security shows each tenant only its own rows, on the one pooled connection
    assert seen == [(tenant, 1), (other_tenant, 0), (tenant, 1), (tenant, 1)]


async def test_a_driver_unit_of_work_is_one_transaction_that_commits_or_rolls_back(
    one_connection: Database, tenant: str, db: asyncpg.Pool
) -> None:
    async with one_connection.driver_unit_of_work(trusted_tenant(tenant)) as connection:
        first = await NOW.fetchrow(connection, {})
        second = await NOW.fetchrow(connection, {})
        assert first["tx"] == second["tx"]  # both statements inside one transaction
    written = await _one_committed_one_failed(one_connection.driver_unit_of_work, tenant, db)
    assert written == [{"n": 1}]


async def test_a_driver_unit_of_work_sets_the_tenant_again_after_a_rollback(
    one_connection: Database, tenant: str, other_tenant: str, db: asyncpg.Pool
) -> None:
    await insert_outbox_event(db, tenant)
    async with one_connection.driver_unit_of_work(trusted_tenant(other_tenant)):
        pass  # the one pooled connection served other_tenant last

    async def rolled_back() -> None:
        async with one_connection.driver_unit_of_work(trusted_tenant(tenant)):
            raise RuntimeError("rolls back")

    with pytest.raises(RuntimeError):
        await rolled_back()
    async with one_connection.driver_unit_of_work(trusted_tenant(tenant)) as connection:
        setting = await connection.fetchval("SELECT current_setting('app.tenant_id')")
        visible = await connection.fetchval("SELECT count(*) FROM outbox_events")
    assert (setting, visible) == (tenant, 1)


async def test_a_repository_on_a_driver_connection_refuses_orm_work(
    one_connection: Database, tenant: str
) -> None:
    scoped = trusted_tenant(tenant)
    async with one_connection.driver_unit_of_work(scoped) as connection:
        repo = IdentityRepository(connection, scoped)
        assert await repo.holders({IdentityKey(IdentityKind.EMAIL, "", "a@example.com")}) == {}
        with pytest.raises(RuntimeError, match="needs a session unit of work"):
            await repo.of_customer(new_id())


@pytest.mark.parametrize("unit", ["driver_reads", "driver_unit_of_work"])
async def test_overflow_connections_of_driver_units_are_closed_on_release(
    database_url: str, tenant: str, unit: str, caplog: pytest.LogCaptureFixture
) -> None:
    # pool of 1 + 3 overflow, all four in use at once: on release one goes back to the
    # pool and three are closed, which needs IO inside SQLAlchemy's greenlet
    engine = create_app_engine(
        make_settings(database_pool_size=1, database_max_overflow=3), database_url
    )
    database = Database(engine)
    held: list[asyncpg.Connection] = []
    barrier = asyncio.Barrier(4)

    async def use() -> None:
        async with getattr(database, unit)(trusted_tenant(tenant)) as connection:
            held.append(connection)
            await barrier.wait()
            assert await connection.fetchval("SELECT 1") == 1

    try:
        await asyncio.gather(*(use() for _ in range(4)))
        assert [c.is_closed() for c in held].count(True) == 3
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert not [r for r in caplog.records if "closing connection" in r.getMessage()]
    finally:
        await engine.dispose()
