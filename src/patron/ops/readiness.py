"""The pieces every readiness and metrics endpoint shares: the API's (``ops.endpoints``) and
the probe port of ``patron relay`` / ``patron worker`` (``ops.probes``).

A check is an awaitable that raises when its dependency is unusable; it gets
``CHECK_TIMEOUT_SECONDS``, and its failure is reported by exception class name only (a
message may carry a URL with credentials).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from patron.config import EventSettings
from patron.kit.jsonutil import dumps
from patron.ops.metrics import REGISTRY, RELAY_STATUS, outbox_backlog

CHECK_TIMEOUT_SECONDS = 2.0
BACKLOG_TIMEOUT_SECONDS = 2.0

Check = Callable[[], Awaitable[None]]


async def run_checks(checks: Mapping[str, Check]) -> tuple[bool, dict[str, str]]:
    """Run ``checks`` one after the other; ``(all passed, {name: "ok" | "error: Kind"})``."""
    results: dict[str, str] = {}
    healthy = True
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), timeout=CHECK_TIMEOUT_SECONDS)
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"error: {type(exc).__name__}"
            healthy = False
    return healthy, results


def database_check(engine: AsyncEngine) -> Check:
    """A check that the database answers ``SELECT 1`` on a connection of ``engine``."""

    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def configured_transports(settings: EventSettings) -> list[str]:
    """The brokers events are published to (``rabbitmq``, ``kafka``); empty when none is
    configured, and then events stay in the outbox (ARCHITECTURE.md §2)."""
    found = [("rabbitmq", settings.rabbitmq_url), ("kafka", settings.kafka_bootstrap_servers)]
    return [name for name, value in found if value]


async def outbox_report(engine: AsyncEngine, settings: EventSettings) -> dict[str, Any] | str:
    """The outbox backlog for a ``/ready`` body (and the outbox gauges, set on the way):
    ``pending`` (events not yet published on every configured transport),
    ``oldest_pending_at`` (RFC 3339, null when none), ``oldest_pending_age_seconds``,
    ``dead_letters`` and the configured ``transports`` (empty: events wait in the outbox
    and ``GET /api/v1/events`` serves them). ``"error: Kind"`` when it cannot be read."""
    try:
        backlog = await asyncio.wait_for(outbox_backlog(engine), BACKLOG_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    oldest = backlog.oldest_pending_at
    return {
        "pending": backlog.pending,
        "oldest_pending_at": oldest.isoformat() if oldest is not None else None,
        "oldest_pending_age_seconds": round(backlog.oldest_pending_age_seconds, 3),
        "dead_letters": backlog.dead,
        "transports": configured_transports(settings),
    }


def relay_report() -> dict[str, str] | None:
    """The broker state of the relays running in this process, if any."""
    return dict(RELAY_STATUS.brokers) if RELAY_STATUS.brokers else None


def json_response(body: Mapping[str, Any], *, healthy: bool) -> Response:
    """``body`` as JSON, 200 when ``healthy`` else 503."""
    return Response(dumps(body), status_code=200 if healthy else 503, media_type="application/json")


async def metrics_response(engine: AsyncEngine) -> Response:
    """Patron's registry in the Prometheus text format, the outbox gauges read first (a
    failing database leaves them at their last values)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(outbox_backlog(engine), BACKLOG_TIMEOUT_SECONDS)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
