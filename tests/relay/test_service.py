"""Which relays run, and ``patron relay`` as a process (SIGTERM stops it cleanly)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import asyncpg
import httpx

from patron.config import Settings
from patron.context import AppContext
from patron.relay.service import OutboxRelay, build_relay_services, create_relay_engine
from tests.conftest import create_customer, make_settings, outbox_rows
from tests.relay.conftest import Consumer, wait_until


def _ctx(app_ctx: AppContext, settings: Settings) -> AppContext:
    return AppContext(**{**app_ctx.__dict__, "settings": settings})


async def test_one_relay_per_configured_transport(app_ctx: AppContext) -> None:
    assert build_relay_services(_ctx(app_ctx, make_settings())) == []
    rabbit = build_relay_services(_ctx(app_ctx, make_settings(rabbitmq_url="amqp://x/")))
    assert [s.name for s in rabbit] == ["outbox-relay-rabbitmq"]
    both = build_relay_services(
        _ctx(app_ctx, make_settings(rabbitmq_url="amqp://x/", kafka_bootstrap_servers="k:9092"))
    )
    assert [s.name for s in both] == ["outbox-relay-rabbitmq", "outbox-relay-kafka"]
    for service in [*rabbit, *both]:
        assert isinstance(service, OutboxRelay)
        await service.engine.dispose()
    assert [s.required for s in both] == [["rabbitmq", "kafka"]] * 2  # type: ignore[attr-defined]


async def test_patron_relay_process_publishes_and_stops_on_sigterm(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    tenant: str,
    db: asyncpg.Pool,
    consumer: Consumer,
    database_url: str,
    rabbitmq_url: str,
    exchange: str,
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RABBITMQ_URL": rabbitmq_url,
        "RABBITMQ_EXCHANGE": exchange,
        "RELAY_POLL_INTERVAL": "0.02",
        "LOG_LEVEL": "WARNING",
        "PATRON_ENV": "test",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "patron.cli",
        "relay",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        customer = await create_customer(client, admin, first_name="Proc")

        async def published() -> bool:
            rows = await outbox_rows(db, tenant)
            return bool(rows) and rows[0]["published_at"] is not None

        # the budget covers the process's start-up (imports), which takes 20 s and more on a
        # 2-core machine busy with other test processes
        await wait_until(published, within=90, what="the relay process to publish")
        await consumer.barrier()
        assert [m.body["subject"] for m in consumer.of_tenant(tenant)] == [customer["id"]]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, output.decode()


async def test_relay_engine_runs_as_patron_system_without_waiting_for_wal_flush(
    settings: Settings, database_url: str
) -> None:
    engine = create_relay_engine(settings, database_url)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.exec_driver_sql(
                    "SELECT current_user, current_setting('synchronous_commit')"
                )
            ).one()
    finally:
        await engine.dispose()
    assert tuple(row) == (settings.database_system_role, "off")
