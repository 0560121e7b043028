"""The probe port of ``patron relay`` and ``patron worker``: ``/health``, ``/ready`` and
``/metrics`` for Kubernetes probes and Prometheus, in processes that serve no API.

``/ready`` is 503 when the database does not answer or one of the process's background
services is not running (starting, waiting to restart after a crash, or stopped: its
supervisor knows, :class:`patron.runtime.Supervision`). A broker that is down is reported in
the body but fails nothing by itself: the relay retries it on its own while events wait in
the outbox (docs/decisions/0007); a consumer that cannot reach its broker crashes and is
restarted by the supervisor, which does fail ``/ready`` until it runs again. The body also
shows each service's state and restarts and the outbox backlog. The app is assembled in
:mod:`patron.processes`, which puts a :class:`ProbeTarget` on ``app.state.probe``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from patron.config import EventSettings
from patron.ops.metrics import ServicesView
from patron.ops.readiness import (
    database_check,
    json_response,
    metrics_response,
    outbox_report,
    relay_report,
    run_checks,
)

router = APIRouter()


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """What the probe port looks at: the process's database engine (app role, which may
    read the outbox backlog), its event settings and its supervised services."""

    engine: AsyncEngine
    settings: EventSettings
    services: ServicesView


def _target(request: Request) -> ProbeTarget:
    target: ProbeTarget = request.app.state.probe
    return target


@router.get("/health")
@router.get("/healthcheck")
async def health() -> dict[str, str]:
    """Liveness: the process answers (its event loop is not stuck)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> Response:
    """Readiness: ``{"status": "ready" | "unavailable", "checks": {"database": ...,
    "services": ...}, "services": {name: {"state", "restarts", ...}}, "outbox": {...},
    "relay": {transport: state}}``; 200 or 503."""
    target = _target(request)
    healthy, checks = await run_checks({"database": database_check(target.engine)})
    report = target.services.report()
    idle = [name for name, status in report.items() if status.get("state") != "running"]
    if target.services.ready():
        checks["services"] = "ok"
    else:
        checks["services"] = "error: not running: " + (", ".join(idle) or "none started")
        healthy = False
    body: dict[str, Any] = {
        "status": "ready" if healthy else "unavailable",
        "checks": checks,
        "services": report,
    }
    if checks["database"] == "ok":
        body["outbox"] = await outbox_report(target.engine, target.settings)
    relay = relay_report()
    if relay:
        body["relay"] = relay
    return json_response(body, healthy=healthy)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Patron's Prometheus registry, with the process and Python collectors."""
    return await metrics_response(_target(request).engine)
