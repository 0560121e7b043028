"""Meta webhook ingestion against the upsert endpoint, in one run on one database.

``python -m bench.webhooks`` (re)creates ``patron_bench_webhooks`` (``BENCH_WEBHOOK_DATABASE_URL``),
migrates it, starts Patron under uvicorn (``--serve`` in a child process, ``META_APP_SECRET``
set), connects one Facebook page to tenant ``bench-wh`` and upserts ``--known`` customers.
Then, for ``--duration`` seconds each, ``--concurrency`` clients send:

- **webhook**: signed ``POST /webhooks/meta`` batches of 10 entries (one message each),
  senders half new, half known; each entry upserts the sender and records a message;
- **upsert**: ``POST /api/v1/customers/upsert`` of one PSID, half new, half known.

It prints entries per second and upserts per second with request latencies, and writes
``bench/results/webhooks-<time>.json``. The clients are Python (httpx) on the same machine,
so both rates are lower than wrk would show; the ratio is what matters. The machine must be
otherwise idle.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn

from bench import common
from bench.patron_server import create_key
from bench.run import _wait_port
from patron.config import Settings
from patron.db.migrate import upgrade
from patron.messaging.signature import sign

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/patron_bench_webhooks"
TENANT = "bench-wh"
SECRET = "bench-app-secret"  # noqa: S105 - a bench database's made-up Meta app
APP_ID = "1517776481860111"
PAGE_ID = "104857600000001"
ENTRIES_PER_POST = 10
RESULTS = Path(__file__).parent / "results"


def database_url() -> str:
    return os.environ.get("BENCH_WEBHOOK_DATABASE_URL", DEFAULT_URL)


def serve(port: int) -> None:
    """Patron with the defaults, quiet logs and the bench's Meta app secret."""
    from patron.app import create_app

    url = database_url()
    settings = Settings(
        database_url=url, log_level="WARNING", patron_env="development", meta_app_secret=SECRET
    )
    app = create_app(settings, url)
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


async def prepare(url: str) -> None:
    """A fresh, migrated database."""
    name = common.database_name(url)
    conn = await asyncpg.connect(common.server_dsn(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    await asyncio.to_thread(upgrade, url)


@dataclass
class Phase:
    name: str
    requests: int = 0
    items: int = 0
    failures: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "name": self.name,
            "requests": self.requests,
            "items": self.items,
            "failures": self.failures,
            "seconds": round(self.seconds, 2),
            "items_per_second": round(self.items / self.seconds, 1) if self.seconds else 0,
            "p50_ms": round(statistics.median(lat), 1) if lat else None,
            "p95_ms": round(lat[int(len(lat) * 0.95) - 1], 1) if lat else None,
        }


class Senders:
    """PSIDs: new ones (never seen) and known ones (upserted before measuring)."""

    def __init__(self, known: int, rng: random.Random) -> None:
        self.known = [f"7{n:015d}" for n in range(known)]
        self.fresh = itertools.count(10**15)
        self.rng = rng

    def pick(self) -> str:
        if self.rng.random() < 0.5:
            return f"8{next(self.fresh):015d}"
        return self.rng.choice(self.known)


def batch(senders: Senders, mids: itertools.count[int]) -> bytes:
    now = int(time.time() * 1000)
    entries = []
    for _ in range(ENTRIES_PER_POST):
        psid = senders.pick()
        event = {
            "sender": {"id": psid},
            "recipient": {"id": PAGE_ID},
            "timestamp": now,
            "message": {"mid": f"m_bench_{next(mids)}", "text": "Hi, where is my order?"},
        }
        entries.append({"id": PAGE_ID, "time": now, "messaging": [event]})
    return json.dumps({"object": "page", "entry": entries}).encode()


async def run_phase(
    phase: Phase, duration: float, concurrency: int, send: Any, items_per_request: int
) -> None:
    deadline = time.monotonic() + duration
    start = time.monotonic()

    async def worker() -> None:
        while time.monotonic() < deadline:
            began = time.perf_counter()
            ok = await send()
            phase.latencies_ms.append((time.perf_counter() - began) * 1000)
            phase.requests += 1
            if ok:
                phase.items += items_per_request
            else:
                phase.failures += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.seconds = time.monotonic() - start


async def measure(args: argparse.Namespace, base: str) -> dict[str, Any]:
    key = await create_key(database_url(), TENANT)
    headers = {"X-API-Key": key}
    rng = random.Random(7)
    senders = Senders(args.known, rng)
    mids = itertools.count()
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        channel = {
            "platform": "facebook",
            "app_id": APP_ID,
            "page_id": PAGE_ID,
            "access_token": "EAAG-bench",
        }
        created = await client.post("/api/v1/channels", json=channel, headers=headers)
        created.raise_for_status()

        async def upsert(psid: str) -> bool:
            body = {"platform": "facebook", "app_id": APP_ID, "psid": psid}
            response = await client.post("/api/v1/customers/upsert", json=body, headers=headers)
            return response.status_code in (200, 201)

        seeded = iter(senders.known)

        async def seed() -> None:
            for psid in seeded:
                assert await upsert(psid)

        await asyncio.gather(*(seed() for _ in range(args.concurrency)))

        async def webhook() -> bool:
            raw = batch(senders, mids)
            response = await client.post(
                "/webhooks/meta",
                content=raw,
                headers={"X-Hub-Signature-256": sign(raw, SECRET)},
            )
            return response.status_code == 200 and response.json()["recorded"] == 10

        phases = [Phase("webhook entries"), Phase("upserts")]
        for _ in range(args.rounds):
            await run_phase(phases[0], args.duration, args.concurrency, webhook, 10)
            await run_phase(
                phases[1], args.duration, args.concurrency, lambda: upsert(senders.pick()), 1
            )
    return {"phases": [p.summary() for p in phases]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="(internal) run the server")
    parser.add_argument("--port", type=int, default=8172)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--known", type=int, default=2000, help="customers upserted first")
    args = parser.parse_args()
    if args.serve:
        serve(args.port)
        return
    asyncio.run(prepare(database_url()))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    os.environ["BENCH_WEBHOOK_DATABASE_URL"] = database_url()
    with (RESULTS / f"webhooks-{stamp}.log").open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "bench.webhooks", "--serve", "--port", str(args.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            _wait_port(args.port, proc)
            result = asyncio.run(measure(args, f"http://127.0.0.1:{args.port}"))
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    result["args"] = {k: v for k, v in vars(args).items() if k != "serve"}
    hook, ups = result["phases"]
    ratio = hook["items_per_second"] / ups["items_per_second"] if ups["items_per_second"] else 0
    result["entries_per_upsert_rate"] = round(ratio, 2)
    (RESULTS / f"webhooks-{stamp}.json").write_text(json.dumps(result, indent=2))
    for phase in result["phases"]:
        print(json.dumps(phase))
    print(f"webhook entries/s ÷ upserts/s = {ratio:.2f}")


if __name__ == "__main__":
    main()
