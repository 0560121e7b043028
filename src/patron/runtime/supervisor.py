"""Run background services until told to stop, restarting any that crash.

A service that raises is logged and restarted after a capped exponential backoff (1 s
doubling to 60 s), so one broken dependency (a broker that is down, say) never stops the
process or the other services.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence
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


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def supervise(service: BackgroundService, stop: asyncio.Event) -> None:
    """Run ``service`` until ``stop`` is set, restarting it with backoff when it raises."""
    crashes = 0
    while not stop.is_set():
        try:
            await service.run(stop)
            crashes = 0  # returned on its own: run it again (the loop ends once stopped)
        except asyncio.CancelledError:
            raise
        except Exception:
            delay = capped_exponential(
                crashes, initial=RESTART_MIN_SECONDS, maximum=RESTART_MAX_SECONDS
            )
            crashes += 1
            log.exception("background service crashed", service=service.name, restart_in=delay)
            await wait_or_stop(stop, delay)


async def run_services(
    services: Sequence[BackgroundService], stop: asyncio.Event | None = None
) -> None:
    """Supervise ``services`` until ``stop`` is set (or SIGINT/SIGTERM when not given)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    log.info("background services starting", services=[s.name for s in services])
    await asyncio.gather(*(supervise(s, stop) for s in services))
    log.info("background services stopped")
