"""A MEXC request-weight budget shared through Redis by every worker process on every machine.

MEXC limits per IP, so the budget has to be shared, not per process. Time is cut into
fixed windows on Redis's clock (one clock for all machines); a request books its weight
with INCRBY in the current window's key and, when the window is full, takes it back and
waits for the next one. Fixed windows can let two windows' worth through around a
boundary, so the capacity should be at most half of what MEXC allows (the default 250
per 10 s is half of MEXC's documented 500).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from app.exchange.errors import RequestBudgetExceededError


class RedisWeightBudget:
    def __init__(
        self,
        client: redis.Redis,
        capacity: int = 250,
        window_seconds: int = 10,
        *,
        key_prefix: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if capacity < 1 or window_seconds < 1:
            raise ValueError("capacity and window_seconds must be positive")
        self.client = client
        self.capacity = capacity
        self.window_seconds = window_seconds
        self.key_prefix = f"{key_prefix}cdb:mexc-weight:"
        self._sleep = sleep
        self.last_window: int | None = None  # the window the latest grant was booked in

    def _now(self) -> float:
        seconds, micros = self.client.time()
        return seconds + micros / 1_000_000

    def acquire(self, weight: int, max_wait: float) -> float:
        """Block until `weight` fits in a window; return the seconds waited.

        Raises RequestBudgetExceededError when it cannot be granted within `max_wait`.
        """
        if weight > self.capacity:
            raise ValueError(f"weight {weight} can never fit in a budget of {self.capacity}")
        if weight <= 0:
            return 0.0
        waited = 0.0
        while True:
            now = self._now()
            window = int(now // self.window_seconds)
            key = f"{self.key_prefix}{window}"
            with self.client.pipeline() as pipe:
                used, _ = pipe.incrby(key, weight).expire(key, 2 * self.window_seconds).execute()
            if used <= self.capacity:
                self.last_window = window
                return waited
            self.client.decrby(key, weight)
            wait = (window + 1) * self.window_seconds - now + 0.001
            if waited + wait > max_wait:
                raise RequestBudgetExceededError(
                    f"request weight {weight} would have to wait {wait:.2f} s for the shared "
                    f"budget ({self.capacity} per {self.window_seconds} s across all workers), "
                    f"more than the allowed {max_wait:g} s",
                    wait_needed=wait,
                )
            self._sleep(wait)
            waited += wait
