"""Exponential backoff with full jitter (spreads retries of many dispatchers)."""

from __future__ import annotations

import random


def full_jitter_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """A delay in [0, min(cap, base * 2**(attempt-1))] for the attempt-th failure."""
    if attempt <= 0:
        return 0.0
    ceiling = min(cap, base * (2 ** min(attempt - 1, 32)))
    return rng.uniform(0, ceiling)
