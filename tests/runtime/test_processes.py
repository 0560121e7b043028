"""``patron relay`` and ``patron worker`` serve no API; with a probe port they answer
``/health``, ``/ready`` and ``/metrics`` (``patron.processes``, ``patron.ops.probes``).

The subprocess tests start the real commands against the test database and the local
RabbitMQ, read the three endpoints and stop the process with SIGTERM. The in-process tests
call ``run_worker`` / ``run_relay`` with their own stop event to reach states a subprocess
cannot show cheaply: a consumer in its restart back-off, a relay with no broker, a port in
use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest

from patron.ops.metrics import BACKGROUND_SERVICES
from patron.processes import run_relay, run_worker
from tests.conftest import ApiKeyFactory, create_customer, make_settings
from tests.ops.test_ops import samples
from tests.orders.waiting import eventually
from tests.services import free_port

PATRON = Path(sys.executable).with_name("patron")
# Settings of this machine's environment that must not leak into the process under test.
SERVICE_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "RABBITMQ_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "PROBE_PORT",
    "HOST",
)
START_SECONDS = 60.0  # start-up imports everything: allow for a machine busy with tests


class Patron:
    """A ``patron`` subprocess whose output goes to ``log``; its probe port at ``url``."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path, port: int) -> None:
        self.process = process
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text()

    async def wait_ready(self, client: httpx.AsyncClient, **expected: Any) -> dict[str, Any]:
        """Poll ``/ready`` until it is 200 and its body has ``expected`` at the top level;
        fail (showing the process's output) if the process ends or time runs out."""

        async def ready() -> dict[str, Any] | None:
            assert self.process.returncode is None, self.output()
            try:
                response = await client.get("/ready")
            except httpx.TransportError:
                return None  # not listening yet
            body: dict[str, Any] = response.json()
            if response.status_code != 200:
                return None
            return body if all(body.get(k) == v for k, v in expected.items()) else None

        try:
            found: dict[str, Any] = await eventually(ready, seconds=START_SECONDS)
        except pytest.fail.Exception:
            pytest.fail(f"/ready never answered 200 with {expected}; output:\n{self.output()}")
        return found

    async def terminate(self) -> int:
        """SIGTERM, then the exit code (within 30 s)."""
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 30)


@contextlib.asynccontextmanager
async def patron(tmp_path: Path, env: dict[str, str], *args: str) -> AsyncIterator[Patron]:
    """Run ``patron *args`` for the block (killed afterwards if still running); ``env``
    must set ``PROBE_PORT`` or ``args`` ``--probe-port``."""
    port = int(env.get("PROBE_PORT") or args[args.index("--probe-port") + 1])
    log = tmp_path / f"{args[0]}.log"
    with log.open("w") as out:
        process = await asyncio.create_subprocess_exec(
            str(PATRON), *args, env=env, cwd=tmp_path, stdout=out, stderr=out
        )
    try:
        yield Patron(process, log, port)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def environment(database_url: str, **settings: str) -> dict[str, str]:
    """This test run's environment, pointed at the test database, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    return env | {
        "DATABASE_URL": database_url,
        "PATRON_ENV": "test",
        "LOG_LEVEL": "WARNING",
        **settings,
    }


def refused(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:``port`` any more."""
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def assert_process_metrics(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> None:
    """prometheus_client's process, platform and GC collectors are on Patron's registry."""
    names = {name for name, _ in found}
    assert found[("process_resident_memory_bytes", ())] > 0
    assert "process_cpu_seconds_total" in names
    assert "python_info" in names
    assert "python_gc_objects_collected_total" in names


async def test_patron_relay_serves_probes_and_exits_cleanly_on_sigterm(
    tmp_path: Path, database_url: str, rabbitmq_url: str
) -> None:
    port, exchange = free_port(), f"patron.test.{uuid.uuid4().hex}"
    env = environment(database_url, RABBITMQ_URL=rabbitmq_url, RABBITMQ_EXCHANGE=exchange)
    try:
        async with patron(tmp_path, env, "relay", "--probe-port", str(port)) as relay:
            async with httpx.AsyncClient(base_url=relay.url, timeout=5) as client:
                body = await relay.wait_ready(client, relay={"rabbitmq": "ok"})
                assert (await client.get("/health")).json() == {"status": "ok"}
                exposition = (await client.get("/metrics")).text
                missing = await client.get("/nothing-here")
            assert body["checks"] == {"database": "ok", "services": "ok"}
            assert body["services"] == {
                "outbox-relay-rabbitmq": {"state": "running", "restarts": 0},
                "webhooks": {"state": "running", "restarts": 0},
            }
            assert body["outbox"]["transports"] == ["rabbitmq"]
            assert {"pending", "oldest_pending_age_seconds", "dead_letters"} <= set(body["outbox"])
            found = samples(exposition)
            assert_process_metrics(found)
            service = (("service", "outbox-relay-rabbitmq"),)
            assert found[("patron_background_service_up", service)] == 1
            assert found[("patron_background_service_restarts_total", service)] == 0
            assert found[("patron_relay_broker_up", (("transport", "rabbitmq"),))] == 1
            assert ("patron_outbox_pending", ()) in found
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"

            assert await relay.terminate() == 0, relay.output()
            assert "Traceback" not in relay.output()
            assert refused(port)
    finally:
        connection = await aio_pika.connect(rabbitmq_url)
        async with connection:
            await (await connection.channel()).exchange_delete(exchange)


async def test_patron_worker_serves_probes_on_probe_port_and_exits_cleanly_on_sigterm(
    tmp_path: Path, database_url: str, rabbitmq_url: str
) -> None:
    port, queue = free_port(), f"test.worker-probe.{uuid.uuid4().hex[:10]}"
    env = environment(
        database_url,
        RABBITMQ_URL=rabbitmq_url,
        ORDERS_CONSUMER_EXCHANGE=f"{queue}.exchange",
        ORDERS_CONSUMER_QUEUE=queue,
        PROBE_PORT=str(port),  # the setting, where the relay test uses the option
    )
    try:
        async with patron(tmp_path, env, "worker") as worker:
            async with httpx.AsyncClient(base_url=worker.url, timeout=5) as client:
                body = await worker.wait_ready(client)
                assert (await client.get("/health")).json() == {"status": "ok"}
                exposition = (await client.get("/metrics")).text
            assert body["checks"] == {"database": "ok", "services": "ok"}
            assert body["services"] == {
                "orders-consumer": {"state": "running", "restarts": 0},
                "jobs": {"state": "running", "restarts": 0},
            }
            assert "relay" not in body
            found = samples(exposition)
            assert_process_metrics(found)
            service = (("service", "orders-consumer"),)
            assert found[("patron_background_service_up", service)] == 1
            assert found[("patron_background_service_up", (("service", "jobs"),))] == 1
            assert ("patron_outbox_pending", ()) in found

            assert await worker.terminate() == 0, worker.output()
            assert "Traceback" not in worker.output()
            assert refused(port)
    finally:
        connection = await aio_pika.connect(rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            for name in (queue, f"{queue}.retry", f"{queue}.dlq"):
                await channel.queue_delete(name)
            for name in (f"{queue}.exchange", f"{queue}.dlx"):
                await channel.exchange_delete(name)


async def test_worker_whose_consumer_cannot_reach_its_broker_is_alive_but_not_ready(
    database_url: str,
) -> None:
    """The consumer crashes on connect and waits out the supervisor's back-off: /health
    stays 200 (nothing to restart the process for), /ready is 503 and says which service
    is down and why, /metrics counts the restarts."""
    port, stop = free_port(), asyncio.Event()
    nobody = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    task = asyncio.create_task(
        run_worker(make_settings(rabbitmq_url=nobody), database_url, probe_port=port, stop=stop)
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

            async def restarting() -> httpx.Response | None:
                assert not task.done(), task
                try:
                    response = await client.get("/ready")
                except httpx.TransportError:
                    return None
                state = response.json()["services"]["orders-consumer"]["state"]
                return response if state == "restarting" else None

            response = await eventually(restarting, seconds=30)
            health = await client.get("/health")
            found = samples((await client.get("/metrics")).text)
    finally:
        stop.set()
    await asyncio.wait_for(task, 15)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"] == {
        "database": "ok",
        "services": "error: not running: orders-consumer",
    }
    consumer = body["services"]["orders-consumer"]
    assert consumer["restarts"] >= 1
    assert consumer["last_error"]  # the exception's class: its message may hold credentials
    assert "guest" not in response.text
    assert 0 <= consumer["restart_in_seconds"] <= 60
    assert health.status_code == 200
    service = (("service", "orders-consumer"),)
    assert found[("patron_background_service_up", service)] == 0
    assert found[("patron_background_service_restarts_total", service)] >= 1
    assert BACKGROUND_SERVICES.source is None  # the process's report ended with it
    assert refused(port)


async def test_relay_without_a_broker_is_ready_and_shows_the_outbox_backlog(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    tenant: str,
    database_url: str,
    db: asyncpg.Pool,
) -> None:
    """No broker: the relay process runs only the webhook dispatcher, stays ready, and its
    /ready and /metrics show the events waiting in the outbox and their age."""
    await create_customer(client, await api_key_headers("admin", tenant), first_name="Wait")
    settings = make_settings(rabbitmq_url=None, kafka_bootstrap_servers=None)
    port, stop = free_port(), asyncio.Event()
    task = asyncio.create_task(run_relay(settings, database_url, probe_port=port, stop=stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            async def ready() -> httpx.Response | None:
                assert not task.done(), task
                try:
                    response = await http.get("/ready")
                except httpx.TransportError:
                    return None
                return response if response.status_code == 200 else None

            response = await eventually(ready, seconds=30)
            pending = await db.fetchval(
                "SELECT count(*) FROM outbox_events WHERE published_at IS NULL AND dead_at IS NULL"
            )
            found = samples((await http.get("/metrics")).text)
    finally:
        stop.set()
    await asyncio.wait_for(task, 15)
    body = response.json()
    assert body["services"] == {"webhooks": {"state": "running", "restarts": 0}}
    assert "relay" not in body
    assert body["outbox"]["transports"] == []
    assert body["outbox"]["pending"] >= 1
    assert body["outbox"]["oldest_pending_age_seconds"] > 0
    assert found[("patron_outbox_pending", ())] == pending >= 1
    assert found[("patron_outbox_oldest_pending_age_seconds", ())] > 0


async def test_a_probe_port_in_use_refuses_to_start_in_one_line(database_url: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as refused_start:
            await run_relay(make_settings(), database_url, probe_port=port, stop=asyncio.Event())
    message = str(refused_start.value.code)
    assert f"cannot listen on 127.0.0.1:{port} for the probe port" in message
    assert "\n" not in message
