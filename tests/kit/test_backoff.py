"""The one backoff formula (patron.kit.backoff)."""

from __future__ import annotations

from patron.kit.backoff import capped_exponential


def test_doubles_from_initial_up_to_the_cap_without_jitter() -> None:
    delays = [capped_exponential(n, initial=1.0, maximum=60.0) for n in range(8)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_jitter_stays_within_its_factors() -> None:
    for attempt in range(12):
        delay = capped_exponential(attempt, initial=30.0, maximum=3600.0, jitter=(0.5, 1.0))
        base = min(3600.0, 30.0 * 2**attempt)
        assert 0.5 * base <= delay <= base


def test_wild_attempt_counts_stay_at_the_cap() -> None:
    assert capped_exponential(10**9, initial=1.0, maximum=60.0) == 60.0
    assert capped_exponential(-3, initial=2.0, maximum=60.0) == 2.0
