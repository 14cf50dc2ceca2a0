"""Reconnect delays: exponential backoff with full jitter.

The n-th consecutive failure waits a uniform random time in [0, min(cap, base * 2**n)], so
a fleet of streamers cut off together does not come back in lockstep (the "full jitter" of
AWS's backoff study). A connection that stayed up STABLE_AFTER_SEC starts again from n = 0.
"""

from __future__ import annotations

import random
from collections.abc import Callable

STABLE_AFTER_SEC = 30.0


def backoff_bound(attempt: int, base: float, cap: float) -> float:
    """The largest delay of the `attempt`-th retry (0-based)."""
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    return min(cap, base * 2 ** min(attempt, 62))


def backoff_delay(
    attempt: int, base: float, cap: float, uniform: Callable[[float, float], float] | None = None
) -> float:
    """A full-jitter delay for the `attempt`-th retry: uniform in [0, backoff_bound]."""
    draw = uniform or random.uniform
    return draw(0.0, backoff_bound(attempt, base, cap))
