"""The background supervisor (``runtime.supervise``): a crashed service is restarted after a
capped exponential backoff (1 s doubling, decision in ``runtime/supervisor.py``), and
``stop`` ends it, also in the middle of a backoff.

The services here are real ``BackgroundService`` objects that record when each run starts;
the supervisor's own constants are used, so the tests take a few seconds.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from patron.runtime import Supervision, supervise
from patron.runtime.supervisor import RESTART_MIN_SECONDS

TIMEOUT = 15.0  # seconds; far above the backoffs waited for here


class Recorder:
    """A service whose first ``crashes`` runs raise at once (``None``: every run does); a
    run that does not crash works until ``stop`` is set. Each run's start time
    (``time.monotonic()``) is put on ``starts``."""

    name = "recorder"

    def __init__(self, crashes: int | None) -> None:
        self.crashes = crashes
        self.runs = 0
        self.starts: asyncio.Queue[float] = asyncio.Queue()

    async def run(self, stop: asyncio.Event) -> None:
        self.runs += 1
        self.starts.put_nowait(time.monotonic())
        if self.crashes is None or self.runs <= self.crashes:
            raise RuntimeError(f"crash in run {self.runs}")
        await stop.wait()

    async def next_start(self) -> float:
        return await asyncio.wait_for(self.starts.get(), TIMEOUT)


async def test_a_crashed_service_is_restarted_after_the_backoff_and_stop_ends_it() -> None:
    service, stop = Recorder(crashes=1), asyncio.Event()
    task = asyncio.create_task(supervise(service, stop))
    try:
        first = await service.next_start()
        second = await service.next_start()  # the restart
        assert second - first >= RESTART_MIN_SECONDS
        assert not task.done()
    finally:
        stop.set()
    await asyncio.wait_for(task, TIMEOUT)  # stop ends the running service and the supervisor
    assert service.runs == 2
    assert service.starts.empty()  # not started again after stop


async def test_a_service_that_keeps_crashing_backs_off_and_stop_cuts_the_wait_short() -> None:
    service, stop = Recorder(crashes=None), asyncio.Event()
    task = asyncio.create_task(supervise(service, stop))
    try:
        starts = [await service.next_start() for _ in range(3)]
        waits = [later - earlier for earlier, later in itertools.pairwise(starts)]
        # 1 s after the first crash, 2 s after the second (capped exponential, no jitter)
        assert waits[0] >= RESTART_MIN_SECONDS
        assert waits[1] >= 2 * RESTART_MIN_SECONDS
        assert waits[1] > waits[0]
    finally:
        stopped_at = time.monotonic()
        stop.set()
    # the third crash is followed by a 4 s backoff; stop ends it at once
    await asyncio.wait_for(task, TIMEOUT)
    assert time.monotonic() - stopped_at < 2 * RESTART_MIN_SECONDS
    assert service.runs == 3


async def test_supervision_shows_starting_running_restarting_and_stopped() -> None:
    service, stop = Recorder(crashes=1), asyncio.Event()
    supervision = Supervision([service.name])
    assert supervision.report() == {"recorder": {"state": "starting", "restarts": 0}}
    assert not supervision.ready()
    task = asyncio.create_task(supervise(service, stop, supervision))
    try:
        await service.next_start()  # the first run raised at once: now in its back-off
        status = supervision.report()["recorder"]
        assert status["state"] == "restarting"
        assert status["restarts"] == 1
        assert status["last_error"] == "RuntimeError"  # the class only, never the message
        assert 0 < float(str(status["restart_in_seconds"])) <= RESTART_MIN_SECONDS
        assert not supervision.ready()

        await service.next_start()  # the second run works until stopped
        assert supervision.report()["recorder"] == {
            "state": "running",
            "restarts": 1,
            "last_error": "RuntimeError",
        }
        assert supervision.ready()
    finally:
        stop.set()
    await asyncio.wait_for(task, TIMEOUT)
    assert supervision.report()["recorder"]["state"] == "stopped"
    assert not supervision.ready()


def test_supervision_without_services_is_not_ready() -> None:
    assert not Supervision().ready()
