"""Capped exponential backoff, the one formula every retry in Patron uses.

The relay (broker down), the webhook dispatcher (receiver failing) and the background
supervisor (a crashed service) all wait ``initial * 2^attempt`` seconds, capped at
``maximum``, times a random jitter factor so that replicas do not retry in lockstep
(AWS Architecture Blog, "Exponential Backoff And Jitter").
"""

from __future__ import annotations

import random

_MAX_EXPONENT = 62  # 2**62 s is far past any cap; avoids huge ints for wild attempt counts


def capped_exponential(
    attempt: int,
    *,
    initial: float,
    maximum: float,
    jitter: tuple[float, float] = (1.0, 1.0),
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): ``min(maximum, initial *
    2^attempt)`` times a uniform factor in ``jitter`` (``(1, 1)``: none)."""
    exponent = min(max(attempt, 0), _MAX_EXPONENT)
    delay = min(maximum, initial * 2**exponent)
    low, high = jitter
    return float(delay * random.uniform(low, high))  # noqa: S311 - jitter, not a secret
