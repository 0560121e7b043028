"""Patron as the benchmark runs it: ``create_app(Settings(...), url)`` under uvicorn.

``python -m bench.patron_server --port 8171`` serves the database named by
``BENCH_DATABASE_URL`` with Patron's defaults (pool 10 + overflow 10, one uvicorn worker),
except ``LOG_LEVEL=WARNING`` so an access log line per request does not dominate.
``python -m bench.patron_server --create-key`` prints a new admin API key bound to
``bench-0`` instead, the way ``patron apikey create`` makes one.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import uvicorn

from bench import common
from patron.auth.api_keys import create_api_key
from patron.auth.principal import Role
from patron.config import Settings
from patron.db.engine import create_admin_engine, create_sessionmaker


async def create_key(url: str, tenant: str = common.BENCH_TENANT) -> str:
    """A new admin API key bound to ``tenant`` (shown once, stored as a hash)."""
    engine = create_admin_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return (
                await create_api_key(session, tenant_id=tenant, role=Role.ADMIN, name="bench")
            ).secret
    finally:
        await engine.dispose()


def settings(url: str) -> Settings:
    """Patron's settings for the benchmark: the defaults, the bench database, quiet logs."""
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # development keys on a bench database: said explicitly, as config.py requires
    return Settings(database_url=url, log_level=os.environ["LOG_LEVEL"], patron_env="development")


def main() -> None:
    """Serve Patron (or, with ``--create-key``, print an API key and exit)."""
    parser = argparse.ArgumentParser(description="Patron server for the benchmark")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8171)
    parser.add_argument(
        "--create-key", action="store_true", help="print a bench-0 admin API key and exit"
    )
    args = parser.parse_args()
    url = common.database_url()
    if args.create_key:
        print(asyncio.run(create_key(url)))
        return
    from patron.app import create_app

    app = create_app(settings(url), url)
    uvicorn.run(
        app, host=args.host, port=args.port, log_config=None, access_log=False, log_level="warning"
    )


if __name__ == "__main__":
    main()
