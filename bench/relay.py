"""Relay benchmark: outbox → RabbitMQ throughput against a plain aio-pika publisher, and
commit → consumer latency at a fixed event rate, measured in one run.

    .venv/bin/python -m bench.relay [--events 20000] [--rate 1000] [--duration 10]

1. **ceiling**: a plain aio-pika loop with publisher confirms publishes the same bodies
   (CloudEvents of ~1 KB) to a topic exchange, ``--batch`` messages in flight and their
   confirms awaited together (the best a confirming publisher does; the one-at-a-time
   loop, ``await publish`` per message, is reported too);
2. **relay**: ``--events`` pending outbox rows committed in one transaction, then timed
   until a consumer has every message (the relay, a separate process as ``patron relay``
   is, confirms and marks them in batches);
3. **latency**: writers commit one event per transaction at ``--rate`` events/s for
   ``--duration`` s while the relay runs; for each event, the time from its commit
   returning to its message reaching the consumer (p50, p95, p99).

The database (``RELAY_BENCH_DATABASE_URL``, default ``patron_bench_relay`` on
127.0.0.1) is created and migrated when missing; its rows are deleted at the end. RabbitMQ
is ``RELAY_BENCH_RABBITMQ_URL`` (default ``amqp://guest:guest@127.0.0.1:5672/``); the
exchange is per run and deleted at the end. Results go to ``bench/results/relay-*.json``.
``RELAY_BENCH_DEBUG=1`` also prints the latency run's p50/p99 per second (where a stall
fell).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractIncomingMessage

from patron.config import Settings
from patron.context import build_context
from patron.db import migrate
from patron.kit.jsonutil import dumps, loads
from patron.processes import relay_services
from patron.runtime import loop, run_services

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/patron_bench_relay"
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
TENANT = "bench-relay"
RESULTS_DIR = Path(__file__).resolve().parent / "results"

INSERT = """
INSERT INTO outbox_events (id, tenant_id, type, source, subject, time, data, trace_id)
VALUES ($1, $2, 'customer.updated', '/patron/customers', $3, now(), $4::jsonb, $5)
"""


def _data(customer_id: str) -> str:
    """A ``customer.updated`` payload of about 1 KB, like the API's."""
    customer = {
        "id": customer_id,
        "first_name": "Bench",
        "last_name": "Customer",
        "email": f"{customer_id[:8]}@example.com",
        "phone": "+14155550100",
        "status": "ACTIVE",
        "customer_type": "INDIVIDUAL",
        "tags": ["vip", "newsletter"],
        "attributes": {"segment": "gold", "source": "bench", "notes": "x" * 300},
        "version": 2,
        "created_at": "2026-11-22T05:00:00Z",
        "updated_at": "2026-11-22T05:00:01Z",
    }
    return dumps({"customer": customer, "fields_changed": ["last_name", "attributes"]}).decode()


def _rows(n: int, customers: int) -> list[tuple[Any, ...]]:
    ids = [str(uuid.uuid4()) for _ in range(customers)]
    return [
        (uuid.uuid4(), TENANT, ids[i % customers], _data(ids[i % customers]), f"bench-{i}")
        for i in range(n)
    ]


async def _ensure_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    server = url.rsplit("/", 1)[0] + "/postgres"
    conn = await asyncpg.connect(server)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    await asyncio.to_thread(migrate.upgrade, url)


class Counter:
    """Counts the messages of an exclusive queue bound to ``v1.customer.#`` (the ceiling
    and throughput runs; the latency run has its own consumer process)."""

    def __init__(self) -> None:
        self.count = 0

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.count += 1

    async def wait_for(self, n: int, limit: float) -> float:
        deadline = time.perf_counter() + limit
        while self.count < n:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{self.count} of {n} messages after {limit} s")
            await asyncio.sleep(0.002)
        return time.perf_counter()


async def _customer_events_queue(
    amqp: str, exchange: str
) -> tuple[aio_pika.abc.AbstractConnection, aio_pika.abc.AbstractQueue]:
    """A new connection and an exclusive queue bound to ``v1.customer.#`` on the run's
    exchange (declared durable, as the relay declares it), prefetch 1,000."""
    connection = await aio_pika.connect(amqp)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=1000)
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue("", exclusive=True)
    await queue.bind(ex, "v1.customer.#")
    return connection, queue


async def _consumer(
    amqp: str, exchange: str
) -> tuple[aio_pika.abc.AbstractConnection, Counter, Callable[[], Any]]:
    connection, queue = await _customer_events_queue(amqp, exchange)
    counter = Counter()
    await queue.consume(counter.on_message, no_ack=True)

    async def delete() -> None:
        async with await aio_pika.connect(amqp) as admin:
            await (await admin.channel()).exchange_delete(exchange)

    return connection, counter, delete


async def ceiling(
    amqp: str, exchange: str, bodies: list[bytes], batch: int, counter: Counter
) -> dict[str, float]:
    """Plain aio-pika publishing with confirms: batched (gather) and one at a time."""
    connection = await aio_pika.connect(amqp)
    channel = await connection.channel(publisher_confirms=True)
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)

    def message(body: bytes) -> aio_pika.Message:
        return aio_pika.Message(
            body,
            content_type="application/cloudevents+json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(uuid.uuid4()),
            headers={"trace_id": "bench"},
        )

    start_count = counter.count
    t0 = time.perf_counter()
    for i in range(0, len(bodies), batch):
        await asyncio.gather(
            *(
                ex.publish(message(b), "v1.customer.updated", mandatory=False)
                for b in bodies[i : i + batch]
            )
        )
    t1 = time.perf_counter()
    await counter.wait_for(start_count + len(bodies), 120)
    batched = len(bodies) / (t1 - t0)

    sequential_n = min(len(bodies), 3000)
    start_count = counter.count
    t0 = time.perf_counter()
    for b in bodies[:sequential_n]:
        await ex.publish(message(b), "v1.customer.updated", mandatory=False)
    t1 = time.perf_counter()
    await counter.wait_for(start_count + sequential_n, 120)
    await connection.close()
    return {"batched_events_per_s": batched, "sequential_events_per_s": sequential_n / (t1 - t0)}


def _relay_process(
    url: str, amqp: str, exchange: str, config: dict[str, Any], stop_file: str
) -> None:
    """``patron relay`` in its own process: the same services (``relay_services``: the
    outbox relay with its engine, and the webhook dispatcher, which has no endpoints here
    but still follows the feed) on the same event loop; stops when ``stop_file`` appears."""

    async def main() -> None:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            patron_env="test",
            log_level="WARNING",
            rabbitmq_url=amqp,
            rabbitmq_exchange=exchange,
            **{f"relay_{k}": v for k, v in config.items()},
        )
        ctx = build_context(settings, url)
        stop = asyncio.Event()

        async def watch() -> None:
            while not await asyncio.to_thread(os.path.exists, stop_file):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            stop.set()

        watcher = asyncio.create_task(watch())
        try:
            await run_services(relay_services(ctx), stop)
        finally:
            await watcher
            await ctx.close()

    loop.run(main())


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def _latency_consumer(
    amqp: str, exchange: str, expected: int, ready: Any, out_path: str, limit: float
) -> None:
    """The consumer of the latency run, in its own process (as a consuming service is):
    records each message's arrival (``time.perf_counter``, CLOCK_MONOTONIC on Linux: one
    clock for every process) until ``expected`` messages came or ``limit`` seconds passed,
    then writes ``{message_id: arrival}`` to ``out_path``."""

    async def main() -> None:
        connection, queue = await _customer_events_queue(amqp, exchange)
        arrived: dict[str, float] = {}

        async def on_message(message: AbstractIncomingMessage) -> None:
            arrived[message.message_id or ""] = time.perf_counter()

        await queue.consume(on_message, no_ack=True)
        ready.set()
        deadline = time.perf_counter() + limit
        while len(arrived) < expected and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await connection.close()
        Path(out_path).write_text(json.dumps(arrived))  # noqa: ASYNC240 - the run is over

    loop.run(main())


async def latency(
    pool: asyncpg.Pool,
    amqp: str,
    exchange: str,
    rate: int,
    duration: float,
    customers: int,
) -> dict[str, float]:
    """Commit one event per transaction at ``rate``/s; commit-return → arrival times, the
    arrivals recorded by a consumer in its own process (:func:`_latency_consumer`)."""
    committed: dict[str, float] = {}
    ids = [str(uuid.uuid4()) for _ in range(customers)]
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    total = int(rate * duration)
    sent = 0
    out_path = str(RESULTS_DIR / f".relay-arrivals-{uuid.uuid4().hex}.json")
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    consumer = ctx.Process(
        target=_latency_consumer, args=(amqp, exchange, total, ready, out_path, duration + 60)
    )
    consumer.start()
    await asyncio.to_thread(ready.wait, 30)

    async def write(i: int) -> None:
        event_id = uuid.uuid4()
        customer = ids[i % customers]
        await pool.execute(INSERT, event_id, TENANT, customer, _data(customer), f"lat-{i}")
        committed[str(event_id)] = time.perf_counter()

    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter()
    while sent < total:
        due = start + (sent // per_tick) * tick
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        for _ in range(per_tick):
            tasks.append(asyncio.create_task(write(sent)))
            sent += 1
    await asyncio.gather(*tasks)
    achieved = total / (time.perf_counter() - start)
    await asyncio.to_thread(consumer.join, 90)
    arrived: dict[str, float] = json.loads(await asyncio.to_thread(Path(out_path).read_text))
    await asyncio.to_thread(Path(out_path).unlink)
    lat = [(arrived[i] - t) * 1000 for i, t in committed.items() if i in arrived]
    if os.environ.get("RELAY_BENCH_DEBUG"):
        by_second: dict[int, list[float]] = {}
        for i, t in committed.items():
            if i in arrived:
                by_second.setdefault(int(t - start), []).append((arrived[i] - t) * 1000)
        for sec, values in sorted(by_second.items()):
            print(
                f"  second {sec}: n={len(values)} p50={_percentile(values, 50):.0f} "
                f"p99={_percentile(values, 99):.0f} ms"
            )
    return {
        "target_events_per_s": rate,
        "achieved_events_per_s": achieved,
        "events": total,
        "delivered": len(lat),
        "p50_ms": _percentile(lat, 50),
        "p95_ms": _percentile(lat, 95),
        "p99_ms": _percentile(lat, 99),
        "max_ms": max(lat),
        "mean_ms": statistics.fmean(lat),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = os.environ.get("RELAY_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    amqp = os.environ.get("RELAY_BENCH_RABBITMQ_URL", DEFAULT_RABBITMQ_URL)
    await _ensure_database(url)
    exchange = f"patron.bench.{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(url, min_size=4, max_size=8)
    await pool.execute("DELETE FROM outbox_events WHERE tenant_id = $1", TENANT)
    # earlier runs' deleted rows would slow every claim and mark (a queue table bloats)
    await pool.execute("VACUUM ANALYZE outbox_events")
    # events of other tenants left pending would be published too: count them
    foreign = await pool.fetchval(
        "SELECT count(*) FROM outbox_events WHERE published_at IS NULL AND dead_at IS NULL"
    )
    connection, counter, delete_exchange = await _consumer(amqp, exchange)
    rows = _rows(args.events, args.customers)
    results: dict[str, Any] = {
        "time": datetime.now(UTC).isoformat(),
        "events": args.events,
        "batch": args.batch,
        "customers": args.customers,
        "pending_before": foreign,
    }
    stop_file = str(RESULTS_DIR / f".relay-stop-{uuid.uuid4().hex}")
    process = None
    try:
        bodies = [dumps({"specversion": "1.0", "id": str(r[0]), "data": loads(r[3])}) for r in rows]
        print(f"ceiling: plain aio-pika, {len(bodies)} messages ...", flush=True)
        results["ceiling"] = await ceiling(amqp, exchange, bodies, args.batch, counter)
        print(f"  {results['ceiling']}", flush=True)

        config = {
            "batch_size": args.batch,
            "poll_interval": args.poll,
            "partitions": 16,
        }
        ctx = multiprocessing.get_context("spawn")
        process = ctx.Process(target=_relay_process, args=(url, amqp, exchange, config, stop_file))
        process.start()
        await asyncio.sleep(3)  # let it import, connect and idle

        print(f"relay: {len(rows)} pending events ...", flush=True)
        start_count = counter.count
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(INSERT, rows)
        t0 = time.perf_counter()
        await counter.wait_for(start_count + len(rows) + foreign, 300)
        unpublished = -1
        while unpublished != 0:  # and every row marked: the relay's whole job
            unpublished = await pool.fetchval(
                "SELECT count(*) FROM outbox_events WHERE tenant_id = $1 AND published_at IS NULL",
                TENANT,
            )
        t1 = time.perf_counter()
        relay_rate = len(rows) / (t1 - t0)
        results["relay"] = {"events_per_s": relay_rate, "seconds": t1 - t0}
        results["ratio_to_batched_ceiling"] = (
            relay_rate / results["ceiling"]["batched_events_per_s"]
        )
        results["ratio_to_sequential_loop"] = (
            relay_rate / results["ceiling"]["sequential_events_per_s"]
        )
        print(f"  {results['relay']}", flush=True)

        # The throughput run left 20,000 updated rows and their WAL: vacuum them and
        # checkpoint now, rather than have autovacuum and a WAL-triggered checkpoint (full
        # page writes, slower commits) run in the middle of the latency run.
        await pool.execute("VACUUM ANALYZE outbox_events")
        await pool.execute("CHECKPOINT")
        print(f"latency: {args.rate} events/s for {args.duration} s ...", flush=True)
        # this process stops consuming: the latency run's consumer is a process of its own
        await connection.close()
        results["latency"] = await latency(
            pool, amqp, exchange, args.rate, args.duration, args.customers
        )
        print(f"  {results['latency']}", flush=True)
    finally:
        await asyncio.to_thread(Path(stop_file).touch)
        if process is not None:
            await asyncio.to_thread(process.join, 15)
            if process.is_alive():
                process.terminate()
        await asyncio.to_thread(Path(stop_file).unlink, missing_ok=True)
        await pool.execute("DELETE FROM outbox_events WHERE tenant_id = $1", TENANT)
        await pool.execute("VACUUM outbox_events")
        await pool.close()
        await delete_exchange()
        await connection.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000, help="events for the throughput runs")
    parser.add_argument("--batch", type=int, default=500, help="relay batch = ceiling batch")
    parser.add_argument("--customers", type=int, default=1000, help="distinct subjects")
    parser.add_argument("--rate", type=int, default=1000, help="events/s for the latency run")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the latency run")
    parser.add_argument("--poll", type=float, default=0.05, help="RELAY_POLL_INTERVAL")
    args = parser.parse_args()
    RESULTS_DIR.mkdir(exist_ok=True)
    results = loop.run(run(args))  # the ceiling publishes on the loop the relay has
    out = RESULTS_DIR / f"relay-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2))
    c, r, lat = results["ceiling"], results["relay"], results["latency"]
    print()
    print("| contender | events/s |")
    print("|---|---|")
    batched = c["batched_events_per_s"]
    print(f"| plain aio-pika, batches of {args.batch} with confirms | {batched:,.0f} |")
    print(
        f"| plain aio-pika, one publish+confirm at a time | {c['sequential_events_per_s']:,.0f} |"
    )
    print(f"| Patron relay (outbox → RabbitMQ, confirmed and marked) | {r['events_per_s']:,.0f} |")
    print(
        f"\nrelay / batched ceiling = {results['ratio_to_batched_ceiling']:.0%} "
        f"(target ≥ 50%); relay / one-at-a-time loop = {results['ratio_to_sequential_loop']:.0%}"
    )
    print(
        f"commit → consumer at {lat['achieved_events_per_s']:.0f} events/s: "
        f"p50 {lat['p50_ms']:.1f} ms, p95 {lat['p95_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms "
        "(target p99 < 250 ms)"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
