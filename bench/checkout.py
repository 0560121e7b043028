"""Micro-benchmark: what detecting dead pooled connections costs a unit of work.

GET by id runs in ``Database.driver_reads`` (check a connection out, ``BEGIN`` with the
tenant, the read, ``COMMIT``, give it back). Three pools are compared on that unit, one
connection, units back to back in one process:

- ``plain``: no check at checkout (Patron before issue 10);
- ``hook``: the application engine's checkout hook (``engine.drop_closed_connections``),
  a local ``is_closed()`` test;
- ``pre_ping``: SQLAlchemy's ``pool_pre_ping=True``, a statement sent on every checkout.

Rounds alternate between the pools so that background load hits them alike; the median
round (and the best) is reported, in microseconds per unit. Usage::

    python -m bench.checkout [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--units 300] [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from patron.db.engine import drop_closed_connections
from patron.db.session import Database
from patron.db.urls import async_url
from patron.tenancy import trusted_tenant

TENANT = trusted_tenant("bench-0")


def _engines(url: str) -> dict[str, Callable[[], AsyncEngine]]:
    def plain() -> AsyncEngine:
        return create_async_engine(async_url(url), pool_size=1, max_overflow=0)

    def hook() -> AsyncEngine:
        return drop_closed_connections(plain())

    def pre_ping() -> AsyncEngine:
        return create_async_engine(async_url(url), pool_size=1, max_overflow=0, pool_pre_ping=True)

    return {"plain": plain, "hook": hook, "pre_ping": pre_ping}


async def _round(database: Database, units: int) -> float:
    """Microseconds per ``driver_reads`` unit with one read in it."""
    started = time.perf_counter()
    for _ in range(units):
        async with database.driver_reads(TENANT) as connection:
            await connection.fetchval("SELECT 1")
    return (time.perf_counter() - started) / units * 1e6


async def main(url: str, units: int, rounds: int) -> dict[str, float]:
    """The median microseconds per unit of each pool."""
    databases = {name: Database(make()) for name, make in _engines(url).items()}
    results: dict[str, list[float]] = {name: [] for name in databases}
    try:
        for database in databases.values():  # connect and prepare, unmeasured
            await _round(database, 50)
        for _ in range(rounds):
            for name, database in databases.items():
                results[name].append(await _round(database, units))
    finally:
        for database in databases.values():
            await database.dispose()
    return {name: statistics.median(values) for name, values in results.items()} | {
        f"{name} (best)": min(values) for name, values in results.items()
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    medians = asyncio.run(main(args.url, args.units, args.rounds))
    for name, value in medians.items():
        base = medians["plain (best)" if "best" in name else "plain"]
        print(f"{name:16} {value:8.1f} us/unit  {value - base:+7.1f} us vs plain")
