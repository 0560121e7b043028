"""The event loop of Patron's own processes (``patron relay``, ``patron worker``).

uvloop (libuv) when it is installed, as uvicorn uses it for ``patron serve``: the relay's
time goes to many small socket writes and future callbacks (one publish and one confirm per
event), which uvloop runs in C; ``python -m bench.relay`` measures the difference. The
standard asyncio loop otherwise (PyPy, Windows), with the same behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
    uvloop = None  # type: ignore[assignment]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new event loop (uvloop if available) and close it,
    like :func:`asyncio.run`."""
    if uvloop is None:  # pragma: no cover
        return asyncio.run(main)
    return uvloop.run(main)
