"""``patron stats rebuild`` against the test database: drift that raw SQL introduces is
found, reported and fixed; ``patron worker`` with no broker configured says so."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from patron.auth.principal import Role
from patron.cli import app as cli
from patron.config import get_settings
from tests.conftest import ApiKeyFactory, cli_failure, create_customer
from tests.orders.waiting import eventually

PATRON = Path(sys.executable).with_name("patron")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PATRON_ENV", "test")  # the development keys, said explicitly
    monkeypatch.delenv("RABBITMQ_URL", raising=False)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def _invoke(*args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def _customer_with_orders(
    client: httpx.AsyncClient, api_key_headers: ApiKeyFactory, tenant: str
) -> str:
    admin = await api_key_headers(Role.ADMIN, tenant)
    service = await api_key_headers(Role.SERVICE, tenant)
    customer = await create_customer(client, admin, first_name="Drift")
    url = f"/api/v1/customers/{customer['id']}/orders"
    for body in (
        {
            "order_id": f"{tenant}-1",
            "total": "10.00",
            "status": "PAID",
            "placed_at": "2026-02-01T00:00:00Z",
        },
        {
            "order_id": f"{tenant}-2",
            "total": "7.00",
            "currency": "EUR",
            "placed_at": "2026-02-02T00:00:00Z",
        },
    ):
        assert (await client.post(url, json=body, headers=service)).status_code == 201
    cid: str = customer["id"]
    return cid


@pytest.mark.usefixtures("cli_env")
async def test_rebuild_reports_and_fixes_drift(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    tenant: str,
    other_tenant: str,
    db: asyncpg.Pool,
) -> None:
    cid = await _customer_with_orders(client, api_key_headers, tenant)
    clean = await _customer_with_orders(client, api_key_headers, other_tenant)
    # drift, as a bug or a manual edit would leave it
    await db.execute(
        "UPDATE customer_stats SET total_spent = 999, last_order_date = NULL "
        "WHERE customer_id = $1",
        uuid.UUID(cid),
    )
    await db.execute("DELETE FROM customer_currency_stats WHERE customer_id = $1", uuid.UUID(cid))

    check = await _invoke(
        "stats", "rebuild", "--tenant", tenant, "--tenant", other_tenant, "--check"
    )
    cli_failure(check, 1)  # drift found: exit 1 on purpose, not a crash
    lines = [line for line in check.output.splitlines() if line.startswith("drift ")]
    assert lines == [
        f"drift tenant={tenant} customer={cid} field={field} stored={stored} recomputed={fresh}"
        for field, stored, fresh in [
            ("last_order_date", "None", "2026-02-01"),
            ("other_currencies.EUR.first_order_date", "None", "2026-02-02"),
            ("other_currencies.EUR.last_order_date", "None", "2026-02-02"),
            ("other_currencies.EUR.lifetime_value", "None", "0"),
            ("other_currencies.EUR.total_orders", "None", "1"),
            ("other_currencies.EUR.total_spent", "None", "7.0000"),
            ("total_spent", "999.0000", "10.0000"),
        ]
    ]
    # --check changed nothing
    assert (
        await db.fetchval(
            "SELECT total_spent FROM customer_stats WHERE customer_id = $1", uuid.UUID(cid)
        )
        == 999
    )

    fixed = await _invoke("stats", "rebuild", "--tenant", tenant)
    assert fixed.exit_code == 0, fixed.output
    assert fixed.output.strip().endswith("1 tenant(s) checked, 7 drifted value(s) fixed")
    row = await db.fetchrow(
        "SELECT total_spent, last_order_date FROM customer_stats WHERE customer_id = $1",
        uuid.UUID(cid),
    )
    assert (row["total_spent"], str(row["last_order_date"])) == (10, "2026-02-01")
    eur = await db.fetchrow(
        "SELECT total_orders, total_spent FROM customer_currency_stats WHERE customer_id = $1",
        uuid.UUID(cid),
    )
    assert (eur["total_orders"], eur["total_spent"]) == (1, 7)

    again = await _invoke("stats", "rebuild", "--tenant", tenant, "--tenant", other_tenant)
    assert again.exit_code == 0
    assert "drift " not in again.output
    assert again.output.strip().endswith("2 tenant(s) checked, 0 drifted value(s) fixed")
    assert clean  # the other tenant's customer never drifted


@pytest.mark.usefixtures("cli_env")
async def test_rebuild_of_every_tenant_includes_ours(
    client: httpx.AsyncClient, api_key_headers: ApiKeyFactory, tenant: str, db: asyncpg.Pool
) -> None:
    cid = await _customer_with_orders(client, api_key_headers, tenant)
    await db.execute(
        "UPDATE customer_stats SET total_orders = 42 WHERE customer_id = $1", uuid.UUID(cid)
    )
    result = await _invoke("stats", "rebuild")
    assert result.exit_code == 0, result.output
    assert (
        f"drift tenant={tenant} customer={cid} field=total_orders stored=42 recomputed=1"
        in result.output.splitlines()
    )
    assert (
        await db.fetchval(
            "SELECT total_orders FROM customer_stats WHERE customer_id = $1", uuid.UUID(cid)
        )
        == 1
    )


@pytest.mark.usefixtures("cli_env")
async def test_missing_stats_row_is_drift_and_check_writes_nothing(
    client: httpx.AsyncClient, api_key_headers: ApiKeyFactory, tenant: str, db: asyncpg.Pool
) -> None:
    cid = await _customer_with_orders(client, api_key_headers, tenant)
    await db.execute("DELETE FROM customer_stats WHERE customer_id = $1", uuid.UUID(cid))
    check = await _invoke("stats", "rebuild", "--tenant", tenant, "--check")
    cli_failure(check, 1)
    assert (
        f"drift tenant={tenant} customer={cid} field=total_spent stored=0 recomputed=10.0000"
        in check.output.splitlines()
    )
    count = "SELECT count(*) FROM customer_stats WHERE customer_id = $1"
    assert await db.fetchval(count, uuid.UUID(cid)) == 0
    fixed = await _invoke("stats", "rebuild", "--tenant", tenant)
    assert fixed.exit_code == 0
    assert await db.fetchval(count, uuid.UUID(cid)) == 1
    assert (
        await db.fetchval(
            "SELECT total_spent FROM customer_stats WHERE customer_id = $1", uuid.UUID(cid)
        )
        == 10
    )


async def test_patron_worker_process_consumes_and_stops_on_sigterm(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    tenant: str,
    database_url: str,
    rabbitmq_url: str,
    db: asyncpg.Pool,
) -> None:
    admin = await api_key_headers(Role.ADMIN, tenant)
    customer = await create_customer(client, admin, first_name="Worker", email="w@example.com")
    queue = f"test.worker.{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RABBITMQ_URL": rabbitmq_url,
        "ORDERS_CONSUMER_EXCHANGE": f"{queue}.exchange",
        "ORDERS_CONSUMER_QUEUE": queue,
        "LOG_LEVEL": "WARNING",
        "PATRON_ENV": "test",
    }
    process = await asyncio.create_subprocess_exec(
        str(PATRON),
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    connection = await aio_pika.connect(rabbitmq_url)
    try:
        # an unroutable message fails the publish instead of vanishing
        channel = await connection.channel(on_return_raises=True)

        async def consuming() -> bool:
            # The worker declares the queue, binds it, then consumes: the queue alone can
            # exist before its bindings (a message published then is dropped), a consumer
            # on it cannot. A missing queue closes the probe's channel.
            probe = await connection.channel()
            try:
                declared = await probe.declare_queue(queue, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                return False
            await probe.close()
            return bool(declared.declaration_result.consumer_count)

        # start-up imports everything: allow for a machine busy with benchmarks
        await eventually(consuming, seconds=60)
        exchange = await channel.get_exchange(f"{queue}.exchange")
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/orders",
            "type": "order.paid",
            "tenantid": tenant,
            "data": {
                "customer": {"email": "w@example.com"},
                "order": {"order_id": f"{queue}-1", "total": "12.00"},
            },
        }
        await exchange.publish(
            aio_pika.Message(json.dumps(event).encode()), routing_key="v1.order.paid"
        )

        async def recorded() -> Any:
            return await db.fetchrow(
                "SELECT customer_id, status FROM customer_orders WHERE order_id = $1",
                f"{queue}-1",
            )

        try:
            row = await eventually(recorded, seconds=30)
        except pytest.fail.Exception:
            process.kill()
            _, stderr = await process.communicate()
            pytest.fail(f"the worker recorded nothing in 30 s; its stderr:\n{stderr.decode()}")
        assert (str(row["customer_id"]), row["status"]) == (customer["id"], "PAID")
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, stderr.decode()
        for name in (queue, f"{queue}.retry", f"{queue}.dlq"):
            await channel.queue_delete(name)
        for name in (f"{queue}.exchange", f"{queue}.dlx"):
            await channel.exchange_delete(name)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await connection.close()
