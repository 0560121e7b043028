"""Health, readiness and metrics endpoints of the API (ARCHITECTURE.md §7). No
authentication.

``/ready`` fails (503) only for what the API needs to serve requests: the database, and
Redis when configured. A broker that is down, or none configured, does not fail it: the
API keeps working and events wait in the outbox (docs/decisions/0007). The body shows the
outbox backlog and its age (``ops.readiness.outbox_report``) and, when a relay runs in this
process, its brokers' state.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from patron.ops.readiness import (
    Check,
    database_check,
    json_response,
    metrics_response,
    outbox_report,
    relay_report,
    run_checks,
)

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness")
@router.get("/healthcheck", summary="Liveness (alias)")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def _redis_check(request: Request) -> Check:
    async def check() -> None:
        if not await request.app.state.ctx.rate_limiter.ping():
            raise RuntimeError("redis did not answer")

    return check


@router.get("/ready", summary="Readiness: database, and Redis when configured")
async def ready(request: Request) -> Response:
    ctx = request.app.state.ctx
    checks = {"database": database_check(ctx.db.engine)}
    if ctx.settings.redis_url:
        checks["redis"] = _redis_check(request)
    healthy, results = await run_checks(checks)
    body: dict[str, Any] = {"status": "ready" if healthy else "unavailable", "checks": results}
    if healthy:
        body["outbox"] = await outbox_report(ctx.db.engine, ctx.settings)
    relay = relay_report()
    if relay:
        body["relay"] = relay
    return json_response(body, healthy=healthy)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return await metrics_response(request.app.state.ctx.db.engine)
