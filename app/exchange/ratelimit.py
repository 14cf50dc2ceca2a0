"""A client-side budget of MEXC request weight (sliding window, first come first served)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from app.exchange.errors import RequestBudgetExceededError


class WeightBudget:
    """At most ``capacity`` weight granted in any ``window_seconds`` (per process).

    Each grant is booked at the moment it fits: a caller that has to wait books a slot in
    the near future and then sleeps outside the lock, so waiters are served in arrival order
    and never hold up callers on other threads longer than their own booking requires.

    The default 250 per 10 s stays below MEXC's documented 500 requests and 300 weight per
    10 s. MEXC counts per IP: processes sharing an IP must divide the capacity between them.
    """

    def __init__(
        self,
        capacity: int = 250,
        window_seconds: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {window_seconds}")
        self.capacity = capacity
        self.window_seconds = window_seconds
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._grants: deque[tuple[float, int]] = deque()  # (booked at, weight), in time order
        self._booked = 0  # sum of weights in _grants

    def acquire(self, weight: int, max_wait: float) -> float:
        """Block until ``weight`` fits in the window; return the seconds waited.

        Raises RequestBudgetExceededError, without booking anything, when the weight could
        not be granted within ``max_wait`` seconds.
        """
        if weight < 0:
            raise ValueError(f"weight must not be negative, got {weight}")
        if weight > self.capacity:
            raise ValueError(f"weight {weight} can never fit in a budget of {self.capacity}")
        if weight == 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._forget_expired(now)
            at = self._earliest_slot(now, weight)
            wait = max(0.0, at - now)
            if wait > max_wait:
                raise RequestBudgetExceededError(
                    f"request weight {weight} would have to wait {wait:.2f} s for the "
                    f"client-side budget ({self.capacity} per {self.window_seconds:g} s), "
                    f"more than the allowed {max_wait:g} s",
                    wait_needed=wait,
                )
            self._grants.append((at, weight))
            self._booked += weight
        if wait > 0:
            self._sleep(wait)
        return wait

    def in_use(self) -> int:
        """Weight booked in the current window (including bookings waiting to start)."""
        with self._lock:
            self._forget_expired(self._clock())
            return self._booked

    # A booking made at t counts in the window ending at x while t + window > x.
    def _forget_expired(self, now: float) -> None:
        while self._grants and self._grants[0][0] + self.window_seconds <= now:
            self._booked -= self._grants.popleft()[1]

    def _earliest_slot(self, now: float, weight: int) -> float:
        # Bookings only move forward in time, so the window ending at the new booking is the
        # only one it can overfill; walk the oldest bookings out until the weight fits.
        window = self.window_seconds
        at = max(now, self._grants[-1][0]) if self._grants else now
        in_window = sum(w for t, w in self._grants if t + window > at)
        for booked_at, booked_weight in self._grants:
            if in_window + weight <= self.capacity:
                break
            if booked_at + window > at:
                in_window -= booked_weight
                at = booked_at + window
        return at
