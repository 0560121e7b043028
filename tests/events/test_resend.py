"""``patron events resend --since | --id`` against the test database."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from patron.cli import app as cli
from tests.conftest import create_customer, outbox_rows
from tests.problems import usage_error


async def _publish_all(db: asyncpg.Pool, tenant: str) -> None:
    await db.execute(
        "UPDATE outbox_events SET published_at = now(), published_to = '{rabbitmq}' "
        "WHERE tenant_id = $1",
        tenant,
    )


def _pending(rows: list[asyncpg.Record]) -> list[bool]:
    return [r["published_at"] is None and r["published_to"] == [] for r in rows]


@pytest.mark.usefixtures("cli_env")
async def test_resend_by_id_and_since(
    client: httpx.AsyncClient, admin: dict[str, str], tenant: str, db: asyncpg.Pool
) -> None:
    for name in ("A", "B", "C"):
        await create_customer(client, admin, first_name=name)
    rows = await outbox_rows(db, tenant)
    await _publish_all(db, tenant)
    await db.execute(
        "UPDATE outbox_events SET dead_at = now(), attempts = 10 WHERE id = $1", rows[0]["id"]
    )

    by_id = await asyncio.to_thread(
        CliRunner().invoke, cli, ["events", "resend", "--id", str(rows[0]["id"])]
    )
    assert by_id.exit_code == 0, by_id.output
    assert "1 event(s)" in by_id.output
    after = await outbox_rows(db, tenant)
    assert _pending(after) == [True, False, False]
    assert (after[0]["dead_at"], after[0]["attempts"]) == (None, 0)

    since = rows[1]["time"].isoformat()
    by_time = await asyncio.to_thread(
        CliRunner().invoke, cli, ["events", "resend", "--since", since]
    )
    assert by_time.exit_code == 0, by_time.output
    assert _pending(await outbox_rows(db, tenant)) == [True, True, True]


@pytest.mark.usefixtures("cli_env")
def test_resend_needs_exactly_one_selector() -> None:
    one = "Invalid value: give exactly one of --since and --id"
    assert one in usage_error(CliRunner().invoke(cli, ["events", "resend"]))
    both = CliRunner().invoke(
        cli, ["events", "resend", "--id", "x", "--since", "2026-01-01T00:00:00"]
    )
    assert one in usage_error(both)
    not_uuid = CliRunner().invoke(cli, ["events", "resend", "--id", "nope"])
    assert "Invalid value: --id: not a UUID: nope" in usage_error(not_uuid)
