"""gRPC against HTTP for the same use cases, on one ``patron serve`` process and one
database, in one run (issue 12):

- ``get``: ``GetCustomer`` against ``GET /api/v1/customers/{id}``;
- ``upsert``: ``UpsertCustomer`` against ``POST /api/v1/customers/upsert``, both an
  unchanged upsert by PSID (a webhook's retry: the hot path of the upsert);
- ``raw``, the ceiling: a bare ``grpc.aio`` servicer of the same two methods in its own
  process (:class:`RawServicer`), running the same SQL as Patron's fast paths on an
  asyncpg pool as ``patron_app`` (so row-level security applies), with no interceptor,
  authentication, validation or events: what gRPC plus the SQL cost on this machine.

It makes its own small database (``--customers``, default 2,000, in tenant
``bench-grpc``), starts ``patron serve`` on it (HTTP and gRPC in the one process, so
each side has the same pool, the same settings and the same background services), and
drives each side in turn with ``--concurrency`` async clients in this process for
``--duration`` seconds, ``--rounds`` times alternating. It prints requests per second and
p50 / p95 latency per side (the median round). The client's CPU counts against both
sides on a small machine (httpx costs more per request than a grpc.aio stub), so read the
numbers as a comparison on this machine, not as server capacity. Usage::

    python -m bench.grpc_vs_http [--customers 2000] [--duration 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx
from grpc import aio

from bench import common
from patron.auth.api_keys import create_api_key
from patron.auth.principal import Role
from patron.customers import repository
from patron.customers.fields import key_triples
from patron.db import migrate
from patron.db.engine import create_admin_engine, create_sessionmaker
from patron.grpc_api.v1 import customers_pb2 as pb
from patron.grpc_api.v1 import customers_pb2_grpc
from patron.identities.service import keys_from_fields

TENANT = "bench-grpc"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/patron_bench_grpc"
Call = Callable[[int], Awaitable[None]]


async def _prepare(url: str) -> str:
    """Recreate and migrate the database; an admin API key of :data:`TENANT`."""
    server = await asyncpg.connect(common.server_dsn(url))
    name = common.database_name(url)
    try:
        await server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await server.execute(f'CREATE DATABASE "{name}"')
    finally:
        await server.close()
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_admin_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            key = await create_api_key(session, tenant_id=TENANT, role=Role.ADMIN)
    finally:
        await engine.dispose()
    return key.secret


# The statements of Patron's fast paths (customers/repository.py): GetCustomer is one
# customer_by_id() call (decision 0016); an unchanged upsert is the holders read in a
# READ ONLY transaction with the tenant set.
_GET_SQL = repository._CUSTOMER_BY_ID  # the very same statement
_HOLDERS_SQL = repository._HOLDERS


class RawServicer(customers_pb2_grpc.CustomerServiceServicer):
    """``GetCustomer`` and an unchanged ``UpsertCustomer`` (first name only) with asyncpg
    directly: the ceiling the full servicer is measured against."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def GetCustomer(self, request: Any, context: Any) -> Any:
        args = _GET_SQL.args({"tenant": TENANT, "customer_id": request.customer_id})
        row = await self.pool.fetchrow(_GET_SQL.sql, *args)
        return pb.GetCustomerResponse(customer=_customer(row))

    async def UpsertCustomer(self, request: Any, context: Any) -> Any:
        keys = key_triples(keys_from_fields({"psid": request.psid, "app_id": request.app_id}))
        kinds, namespaces, values = (list(column) for column in zip(*keys, strict=True))
        args = _HOLDERS_SQL.args(
            {"tenant": TENANT, "kinds": kinds, "namespaces": namespaces, "values": values}
        )
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", TENANT)
            rows = await conn.fetch(_HOLDERS_SQL.sql, *args)
        if len(rows) != 1 or rows[0]["first_name"] != request.first_name:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not an unchanged upsert")
        return pb.UpsertCustomerResponse(created=False, customer=_customer(rows[0]))


def _customer(row: Any) -> Any:
    return pb.Customer(
        id=str(row["id"]),
        tenant_id=row["tenant_id"],
        first_name=row["first_name"] or "",
        last_name=row["last_name"] or "",
        version=row["version"],
    )


async def _serve_raw(url: str, port: int) -> None:
    """Serve :class:`RawServicer` on ``port`` until SIGTERM."""
    pool = await asyncpg.create_pool(
        common.dsn(url),
        min_size=5,
        max_size=20,  # DATABASE_POOL_SIZE's default: the pool patron serve has
        server_settings={"role": "patron_app"},
    )
    server = aio.server()
    customers_pb2_grpc.add_CustomerServiceServicer_to_server(RawServicer(pool), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)
    await pool.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _measure(call: Call, concurrency: int, duration: float) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + duration

    async def client(worker: int) -> None:
        i = worker
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - started)
            i += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(client(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000,
    }


async def _run(
    args: argparse.Namespace, key: str, http_port: int, grpc_port: int, raw_port: int
) -> dict[str, Any]:
    headers = {"X-API-Key": key}
    md = (("x-api-key", key),)
    limits = httpx.Limits(max_connections=args.concurrency)
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", limits=limits) as http,
        aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel,
        aio.insecure_channel(f"127.0.0.1:{raw_port}") as raw_channel,
    ):
        stub: Any = customers_pb2_grpc.CustomerServiceStub(channel)
        raw: Any = customers_pb2_grpc.CustomerServiceStub(raw_channel)
        ids: list[str] = []
        for n in range(args.customers):
            reply = await stub.UpsertCustomer(
                pb.UpsertCustomerRequest(
                    psid=f"psid-{n}", app_id="bench", first_name=f"First{n}", last_name="Bench"
                ),
                metadata=md,
            )
            ids.append(reply.customer.id)
        random.shuffle(ids)

        async def http_get(i: int) -> None:
            r = await http.get(f"/api/v1/customers/{ids[i % len(ids)]}", headers=headers)
            assert r.status_code == 200, r.text

        async def grpc_get(i: int) -> None:
            await stub.GetCustomer(
                pb.GetCustomerRequest(customer_id=ids[i % len(ids)]), metadata=md
            )

        async def raw_get(i: int) -> None:
            await raw.GetCustomer(pb.GetCustomerRequest(customer_id=ids[i % len(ids)]))

        async def http_upsert(i: int) -> None:
            n = i % args.customers
            body = {"psid": f"psid-{n}", "app_id": "bench", "first_name": f"First{n}"}
            r = await http.post("/api/v1/customers/upsert", json=body, headers=headers)
            assert r.status_code == 200, r.text

        async def grpc_upsert(i: int) -> None:
            n = i % args.customers
            request = pb.UpsertCustomerRequest(
                psid=f"psid-{n}", app_id="bench", first_name=f"First{n}"
            )
            await stub.UpsertCustomer(request, metadata=md)

        async def raw_upsert(i: int) -> None:
            n = i % args.customers
            request = pb.UpsertCustomerRequest(
                psid=f"psid-{n}", app_id="bench", first_name=f"First{n}"
            )
            await raw.UpsertCustomer(request)

        sides: dict[str, dict[str, Call]] = {
            "get": {"http": http_get, "grpc": grpc_get, "raw": raw_get},
            "upsert": {"http": http_upsert, "grpc": grpc_upsert, "raw": raw_upsert},
        }
        results: dict[str, Any] = {}
        for op in args.ops.split(","):
            rounds: dict[str, list[dict[str, float]]] = {side: [] for side in sides[op]}
            for warm in sides[op].values():
                await _measure(warm, args.concurrency, 1.0)
            for _ in range(args.rounds):
                for side, call in sides[op].items():
                    rounds[side].append(await _measure(call, args.concurrency, args.duration))
            results[op] = {
                side: {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
                for side, runs in rounds.items()
            }
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--ops", default="get,upsert")
    parser.add_argument("--serve-raw", type=int, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    url = os.environ.get("BENCH_GRPC_DATABASE_URL", DEFAULT_URL)
    if args.serve_raw:
        asyncio.run(_serve_raw(url, args.serve_raw))
        return
    key = asyncio.run(_prepare(url))
    load_before = _load()
    http_port, grpc_port, raw_port = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PATRON_ENV": "development",
        "LOG_LEVEL": "WARNING",
        "GRPC_PORT": str(grpc_port),
    }
    patron = Path(sys.executable).with_name("patron")
    server = subprocess.Popen(  # noqa: S603 - our own console script
        [str(patron), "serve", "--port", str(http_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    raw_server = subprocess.Popen(  # noqa: S603 - this module
        [sys.executable, "-m", "bench.grpc_vs_http", "--serve-raw", str(raw_port)],
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("patron serve did not start")
            time.sleep(0.2)
        time.sleep(1)  # gRPC turns SERVING once the database answers
        results = asyncio.run(_run(args, key, http_port, grpc_port, raw_port))
    finally:
        for process in (server, raw_server):
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    load = {"before": load_before, "after": _load()}
    print(json.dumps({"args": vars(args), "loadavg": load, "results": results}, indent=2))


def _load() -> dict[str, float]:
    """The 1, 5 and 15 minute load averages (other work on the machine skews a run)."""
    return dict(zip(("1m", "5m", "15m"), (round(x, 2) for x in os.getloadavg()), strict=True))


if __name__ == "__main__":
    main()
