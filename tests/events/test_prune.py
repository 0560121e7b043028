"""``patron events prune --older-than-days N`` (patron.events.retention) against the test
database: what has done its work goes, everything else stays."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from typer.testing import CliRunner

from patron.cli import app as cli
from patron.db.engine import create_system_engine
from patron.events import retention
from tests.conftest import make_settings
from tests.problems import usage_error

OLD = datetime.now(UTC) - timedelta(days=40)
RECENT = datetime.now(UTC) - timedelta(days=1)


@pytest.fixture
async def fanout_cursor(db: asyncpg.Pool) -> AsyncIterator[None]:
    """The tests move the (database-wide) fan-out cursor; put it back afterwards."""
    saved = await db.fetchrow("SELECT xid, seq FROM webhook_cursors WHERE name = 'fanout'")
    yield
    await db.execute(
        "UPDATE webhook_cursors SET xid = $1, seq = $2 WHERE name = 'fanout'",
        saved["xid"],
        saved["seq"],
    )


async def _event(
    db: asyncpg.Pool,
    tenant: str,
    *,
    published_at: datetime | None,
    dead_at: datetime | None = None,
) -> uuid.UUID:
    event_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO outbox_events (id, tenant_id, type, source, subject, time, data,"
        " published_at, published_to, dead_at)"
        " VALUES ($1, $2, 'customer.updated', '/patron/customers', NULL, $3, '{}', $4, $5, $6)",
        event_id,
        tenant,
        OLD,
        published_at,
        ["rabbitmq"] if published_at else [],
        dead_at,
    )
    return event_id


async def _cursor_at(db: asyncpg.Pool, event_id: uuid.UUID) -> None:
    await db.execute(
        "UPDATE webhook_cursors SET (xid, seq) = (SELECT xid, seq FROM outbox_events"
        " WHERE id = $1) WHERE name = 'fanout'",
        event_id,
    )


async def _delivery(
    db: asyncpg.Pool, tenant: str, endpoint: uuid.UUID, status: str, at: datetime
) -> uuid.UUID:
    delivery_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type,"
        " payload, status, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, 'customer.updated', '{}', $5, $6, $6)",
        delivery_id,
        tenant,
        endpoint,
        uuid.uuid4(),
        status,
        at,
    )
    return delivery_id


async def _inbox(db: asyncpg.Pool, tenant: str, at: datetime) -> uuid.UUID:
    row_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO inbox_messages (id, tenant_id, message_id, message_type, received_at,"
        " outcome) VALUES ($1, $2, $3, 'order.created', $4, 'processed')",
        row_id,
        tenant,
        str(uuid.uuid4()),
        at,
    )
    return row_id


async def _ids(db: asyncpg.Pool, table: str, tenant: str) -> set[uuid.UUID]:
    rows = await db.fetch(f"SELECT id FROM {table} WHERE tenant_id = $1", tenant)  # noqa: S608
    return {r["id"] for r in rows}


@pytest.mark.usefixtures("cli_env", "fanout_cursor")
async def test_prune_deletes_what_has_done_its_work_and_keeps_the_rest(
    db: asyncpg.Pool, tenant: str
) -> None:
    gone = await _event(db, tenant, published_at=OLD)
    pending = await _event(db, tenant, published_at=None)
    dead = await _event(db, tenant, published_at=None, dead_at=OLD)
    recent = await _event(db, tenant, published_at=RECENT)
    await _cursor_at(db, recent)
    not_fanned_out = await _event(db, tenant, published_at=OLD)  # after the cursor

    endpoint = uuid.uuid4()
    await db.execute(
        "INSERT INTO webhook_endpoints (id, tenant_id, url, secret_encrypted)"
        " VALUES ($1, $2, 'https://example.com/hook', '\\x00')",
        endpoint,
        tenant,
    )
    old_success = await _delivery(db, tenant, endpoint, "succeeded", OLD)
    old_failure = await _delivery(db, tenant, endpoint, "failed", OLD)
    old_pending = await _delivery(db, tenant, endpoint, "pending", OLD)
    recent_success = await _delivery(db, tenant, endpoint, "succeeded", RECENT)
    old_inbox = await _inbox(db, tenant, OLD)
    recent_inbox = await _inbox(db, tenant, RECENT)

    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["events", "prune", "--older-than-days", "30"]
    )
    assert result.exit_code == 0, result.output
    assert "deleted 1 event(s), 2 webhook delivery(ies), 1 inbox message id(s)" in result.output
    assert await _ids(db, "outbox_events", tenant) == {pending, dead, recent, not_fanned_out}
    assert gone not in await _ids(db, "outbox_events", tenant)
    assert await _ids(db, "webhook_deliveries", tenant) == {old_pending, recent_success}
    assert {old_success, old_failure}.isdisjoint(await _ids(db, "webhook_deliveries", tenant))
    assert await _ids(db, "inbox_messages", tenant) == {recent_inbox}
    assert old_inbox not in await _ids(db, "inbox_messages", tenant)


@pytest.mark.usefixtures("fanout_cursor")
async def test_prune_works_in_batches_and_keeps_everything_without_a_cursor(
    db: asyncpg.Pool, tenant: str, database_url: str
) -> None:
    events = [await _event(db, tenant, published_at=OLD) for _ in range(5)]
    engine = create_system_engine(make_settings(), database_url, pool_size=1)
    try:
        await db.execute("UPDATE webhook_cursors SET xid = NULL, seq = NULL WHERE name = 'fanout'")
        before = datetime.now(UTC) - timedelta(days=30)
        nothing = await retention.prune(engine, before, batch_size=2)
        assert nothing.events == 0  # the fan-out has not read them: they stay
        await _cursor_at(db, events[-1])
        pruned = await retention.prune(engine, before, batch_size=2)
    finally:
        await engine.dispose()
    # batches of 2 until none is full; the database is shared with earlier tests, whose
    # old published events may go too
    assert pruned.events >= 5
    assert await _ids(db, "outbox_events", tenant) == set()


def test_prune_needs_a_positive_age() -> None:
    missing = CliRunner().invoke(cli, ["events", "prune"])
    assert "Missing option '--older-than-days'." in usage_error(missing)
    zero = CliRunner().invoke(cli, ["events", "prune", "--older-than-days", "0"])
    assert (
        "Invalid value for '--older-than-days': Input should be greater than or equal to 1"
        in usage_error(zero)
    )
