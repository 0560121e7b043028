"""Polling for a condition with a deadline (instead of sleeping and hoping)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

TIMEOUT = 10.0


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float = TIMEOUT) -> Any:
    """Poll ``check`` every 50 ms until it returns something truthy (returned); fail the
    test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {seconds}s")
        await asyncio.sleep(0.05)
