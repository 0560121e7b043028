"""Per-request cost of Patron's hot reads in one process, robust to a busy machine.

Drives the ASGI app directly (no HTTP server, no client library: only Patron's own work
and the database's round trips are in the loop) with sequential requests for tenant
``bench-0`` of ``patron_bench`` (``python -m bench.load``), and reports per request:

- ``calls``: Python function calls (``cProfile``), which load on the machine does not
  change; the server's CPU per request follows it;
- ``us``: the median microseconds of the timed rounds (unprofiled), which it does.

Operations: ``get`` (GET by id over the sample ids) and ``search`` (a page of 20 over the
sample terms, the mix the wrk benchmark draws from). Usage::

    python -m bench.calls [--ops get,search] [--requests 500] [--rounds 5] [--profile OP]

``--profile OP`` prints the top functions by cumulative time for that operation. To
compare against another checkout, run it with that checkout's ``src`` first on
``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import statistics
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import asyncpg

from bench import common
from bench.patron_server import create_key, settings
from patron.app import create_app
from patron.context import build_context

Message = MutableMapping[str, Any]
App = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


async def _request(app: App, path: str, query: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One GET through the ASGI app; returns the status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8171),
    }
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def main(ops: list[str], requests: int, rounds: int, profile: str | None) -> dict[str, Any]:
    """Calls and microseconds per request of each operation in ``ops``."""
    url = common.database_url()
    conn = await asyncpg.connect(common.dsn(url))
    try:
        ids = [str(r["id"]) for r in await conn.fetch("SELECT id FROM bench_ids ORDER BY n")]
        terms = [r["q"] for r in await conn.fetch("SELECT q FROM bench_search_terms ORDER BY n")]
    finally:
        await conn.close()
    key = await create_key(url)
    ctx = build_context(settings(url), url)
    app: App = create_app(ctx.settings, context=ctx)
    headers = [(b"host", b"patron.bench"), (b"x-api-key", key.encode())]
    rng = random.Random(9)
    targets: dict[str, list[tuple[str, str]]] = {
        "get": [(f"/api/v1/customers/{i}", "") for i in ids],
        "search": [("/api/v1/customers", f"page_size=20&q={urllib.parse.quote(t)}") for t in terms],
    }
    out: dict[str, Any] = {}
    try:
        for op in ops:
            sample = [rng.choice(targets[op]) for _ in range(requests)]

            async def run(sample: list[tuple[str, str]] = sample) -> None:
                for path, query in sample:
                    status = await _request(app, path, query, headers)
                    if status != 200:
                        raise RuntimeError(f"{path}?{query}: {status}")

            await run()  # warm: connections, prepared statements, caches
            timings = []
            for _ in range(rounds):
                started = time.perf_counter()
                await run()
                timings.append((time.perf_counter() - started) / requests * 1e6)
            profiler = cProfile.Profile()
            profiler.enable()
            await run()
            profiler.disable()
            stats = pstats.Stats(profiler)
            calls = stats.total_calls / requests  # type: ignore[attr-defined]
            out[op] = {
                "calls": round(calls),
                "us": round(statistics.median(timings)),
                "us_best": round(min(timings)),
            }
            if op == profile and os.environ.get("BENCH_DUMP"):
                stats.dump_stats(os.environ["BENCH_DUMP"])
            if op == profile:
                stats.sort_stats(os.environ.get("BENCH_SORT", "cumulative")).print_stats(40)
    finally:
        await ctx.close()
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default="get,search")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", default=None)
    args = parser.parse_args()
    result = asyncio.run(main(args.ops.split(","), args.requests, args.rounds, args.profile))
    print(json.dumps(result))
