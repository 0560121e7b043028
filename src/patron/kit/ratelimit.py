"""Rate limits with the ``limits`` library: Redis counters when ``REDIS_URL`` is set (shared by
every replica), in-process counters otherwise (one process only).

Limits are written as ``"5/minute"`` (the ``limits`` string notation).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from patron.errors import RateLimited


def _storage(redis_url: str | None) -> Storage:
    if redis_url:
        scheme, sep, rest = redis_url.partition("://")
        return RedisStorage(
            f"async+{scheme}{sep}{rest}", implementation="redispy", key_prefix="patron:ratelimit"
        )
    return MemoryStorage()


class RateLimiter:
    """A moving-window limiter over one storage."""

    def __init__(self, redis_url: str | None) -> None:
        self.storage = _storage(redis_url)
        self.strategy = MovingWindowRateLimiter(self.storage)

    async def hit(self, limit: str | RateLimitItem, *identifiers: str) -> None:
        """Count one hit; raise :class:`RateLimited` (429 with ``Retry-After``) past the limit."""
        item = parse(limit) if isinstance(limit, str) else limit
        if await self.strategy.hit(item, *identifiers):
            return
        stats = await self.strategy.get_window_stats(item, *identifiers)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"rate limit of {item} exceeded; retry in {retry_after} s", retry_after=retry_after
        )

    async def ping(self) -> bool:
        return bool(await self.storage.check())
