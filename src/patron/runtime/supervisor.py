"""Run background services until told to stop, restarting any that crash.

A service that raises is logged and restarted after a capped exponential backoff (1 s
doubling to 60 s), so one broken dependency (a broker that is down, say) never stops the
process or the other services. What the supervisor knows of each service (running, or
waiting to restart after a crash) is kept in a :class:`Supervision`, which the probe port
of ``patron relay`` / ``patron worker`` reports on ``/ready`` and ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import structlog

from patron.kit.backoff import capped_exponential

log = structlog.get_logger("patron.runtime")

RESTART_MIN_SECONDS = 1.0
RESTART_MAX_SECONDS = 60.0


class BackgroundService(Protocol):
    """A long-running loop. ``run`` returns soon after ``stop`` is set."""

    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


class ServiceState(StrEnum):
    """Where a supervised service is: not yet started, inside ``run``, waiting out the
    back-off after a crash, or ended because ``stop`` was set."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"


@dataclass(slots=True)
class ServiceStatus:
    """One service as its supervisor sees it.

    ``restarts`` counts crashes since the process started; ``last_error`` is the class name
    of the last exception (never its message, which may carry a URL with credentials);
    ``restart_at`` is the ``time.monotonic()`` at which a crashed service runs again.
    """

    state: ServiceState = ServiceState.STARTING
    restarts: int = 0
    last_error: str | None = None
    restart_at: float | None = None

    def report(self) -> dict[str, object]:
        """JSON-ready: ``state``, ``restarts``, and ``last_error`` once it crashed, plus
        ``restart_in_seconds`` while it waits to restart."""
        out: dict[str, object] = {"state": self.state.value, "restarts": self.restarts}
        if self.last_error is not None:
            out["last_error"] = self.last_error
        if self.state is ServiceState.RESTARTING and self.restart_at is not None:
            out["restart_in_seconds"] = round(max(self.restart_at - time.monotonic(), 0.0), 3)
        return out


class Supervision:
    """The state of every service of one :func:`run_services` call, by service name.

    A process is ready when each of its services is running: one that is starting, waiting
    to restart after a crash or stopped is not doing its work.
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.services: dict[str, ServiceStatus] = {name: ServiceStatus() for name in names}

    def track(self, name: str) -> ServiceStatus:
        """The status of ``name``, registered as starting if it is new."""
        return self.services.setdefault(name, ServiceStatus())

    def ready(self) -> bool:
        """True when there is at least one service and every one is running."""
        return bool(self.services) and all(
            s.state is ServiceState.RUNNING for s in self.services.values()
        )

    def report(self) -> dict[str, dict[str, object]]:
        """Each service's :meth:`ServiceStatus.report`, by name."""
        return {name: status.report() for name, status in self.services.items()}


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def supervise(
    service: BackgroundService, stop: asyncio.Event, supervision: Supervision | None = None
) -> None:
    """Run ``service`` until ``stop`` is set, restarting it with backoff when it raises.
    Its state is kept in ``supervision`` when given."""
    status = (supervision if supervision is not None else Supervision()).track(service.name)
    crashes = 0
    try:
        while not stop.is_set():
            status.state = ServiceState.RUNNING
            status.restart_at = None
            try:
                await service.run(stop)
                crashes = 0  # returned on its own: run it again (the loop ends once stopped)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = capped_exponential(
                    crashes, initial=RESTART_MIN_SECONDS, maximum=RESTART_MAX_SECONDS
                )
                crashes += 1
                status.state = ServiceState.RESTARTING
                status.restarts += 1
                status.last_error = type(exc).__name__
                status.restart_at = time.monotonic() + delay
                log.exception("background service crashed", service=service.name, restart_in=delay)
                await wait_or_stop(stop, delay)
    finally:
        status.state = ServiceState.STOPPED
        status.restart_at = None


async def run_services(
    services: Sequence[BackgroundService],
    stop: asyncio.Event | None = None,
    supervision: Supervision | None = None,
) -> None:
    """Supervise ``services`` until ``stop`` is set (or SIGINT/SIGTERM when not given),
    keeping their state in ``supervision`` when given."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    log.info("background services starting", services=[s.name for s in services])
    await asyncio.gather(*(supervise(s, stop, supervision) for s in services))
    log.info("background services stopped")
