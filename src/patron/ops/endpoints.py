"""Health, readiness and metrics endpoints (ARCHITECTURE.md §7). No authentication.

``/ready`` fails (503) only for what the API needs to serve requests: the database, and
Redis when configured. A broker that is down does not fail it: the API keeps working and
events wait in the outbox (docs/decisions/0007). The body shows the outbox backlog and,
when a relay runs in this process, its brokers' state.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from patron.kit.jsonutil import dumps
from patron.ops.metrics import REGISTRY, RELAY_STATUS, outbox_backlog

BACKLOG_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness")
@router.get("/healthcheck", summary="Liveness (alias)")
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _check_database(request: Request) -> None:
    async with request.app.state.ctx.db.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _check_redis(request: Request) -> None:
    ok = await request.app.state.ctx.rate_limiter.ping()
    if not ok:
        raise RuntimeError("redis did not answer")


@router.get("/ready", summary="Readiness: database, and Redis when configured")
async def ready(request: Request) -> Response:
    checks: dict[str, Any] = {}
    probes = {"database": _check_database}
    if request.app.state.ctx.settings.redis_url:
        probes["redis"] = _check_redis
    healthy = True
    for name, probe in probes.items():
        try:
            await asyncio.wait_for(probe(request), timeout=2.0)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
            healthy = False
    body: dict[str, Any] = {"status": "ready" if healthy else "unavailable", "checks": checks}
    if healthy:
        try:
            backlog = await asyncio.wait_for(
                outbox_backlog(request.app.state.ctx.db.engine), BACKLOG_TIMEOUT_SECONDS
            )
            body["outbox"] = {
                "pending": backlog.pending,
                "oldest_pending_age_seconds": round(backlog.oldest_pending_age_seconds, 3),
                "dead_letters": backlog.dead,
            }
        except Exception as exc:
            body["outbox"] = f"error: {type(exc).__name__}"
    if RELAY_STATUS.brokers:
        body["relay"] = dict(RELAY_STATUS.brokers)
    return Response(dumps(body), status_code=200 if healthy else 503, media_type="application/json")


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    # the outbox gauges are read at scrape time; a failing database leaves them stale
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            outbox_backlog(request.app.state.ctx.db.engine), BACKLOG_TIMEOUT_SECONDS
        )
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
