"""A symbol's scenario timeline: which scenario is in force at a moment, and what it does.

A timeline is an immutable, time-ordered tuple of segments; segment i is in force from its
start to the next one's. Before the first segment the seed model applies. Every segment that
changes the price or the spread opens with a print (a trade at its start), so last prices,
candles and the book show the change at once, even for a symbol that trades rarely.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from app.exchange.simulator.scenarios import Scenario

MINUTE_MS = 60_000
MIN_TREND_MULTIPLIER = 0.001  # a falling trend bottoms out at 0.1 % of the price
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Segment:
    """One scenario of a symbol's timeline, with its numbers precomputed as floats."""

    start_ms: int
    scenario: Scenario
    price_factor: float
    trend_per_ms: float  # fraction of the price per millisecond
    spread_factor: float
    depth_factor: Decimal
    opens_with_print: bool  # it changes the price or the spread at its start
    print_is_buy: bool

    def multiplier(self, t_ms: int) -> float:
        trend = 1.0 + self.trend_per_ms * (t_ms - self.start_ms)
        return self.price_factor * max(trend, MIN_TREND_MULTIPLIER)


def _segment(scenario: Scenario, previous: Segment | None) -> Segment:
    assert scenario.started_at_ms is not None
    start = scenario.started_at_ms
    price_factor = float(scenario.price_factor)
    spread_factor = float(scenario.spread_factor)
    before = previous.multiplier(start) if previous is not None else 1.0
    spread_before = previous.spread_factor if previous is not None else 1.0
    return Segment(
        start_ms=start,
        scenario=scenario,
        price_factor=price_factor,
        trend_per_ms=float(scenario.trend_pct_per_min) / 100.0 / MINUTE_MS,
        spread_factor=spread_factor,
        depth_factor=scenario.depth_factor,
        opens_with_print=price_factor != before or spread_factor != spread_before,
        print_is_buy=price_factor >= before,
    )


@dataclass(frozen=True, slots=True)
class Timeline:
    segments: tuple[Segment, ...] = ()
    starts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts", tuple(s.start_ms for s in self.segments))

    def with_scenario(self, scenario: Scenario) -> Timeline:
        """This timeline with `scenario` appended; segments starting at or after it dropped."""
        assert scenario.started_at_ms is not None
        kept = [s for s in self.segments if s.start_ms < scenario.started_at_ms]
        return Timeline((*kept, _segment(scenario, kept[-1] if kept else None)))

    def at(self, t_ms: int) -> Segment | None:
        if not self.segments:
            return None
        i = bisect_right(self.starts, t_ms) - 1
        return self.segments[i] if i >= 0 else None

    def multiplier(self, t_ms: int) -> float:
        segment = self.at(t_ms)
        return 1.0 if segment is None else segment.multiplier(t_ms)

    def spread_factor(self, t_ms: int) -> float:
        segment = self.at(t_ms)
        return 1.0 if segment is None else segment.spread_factor

    def depth_factor(self, t_ms: int) -> Decimal | None:
        segment = self.at(t_ms)
        if segment is None or segment.depth_factor == _ONE:
            return None
        return segment.depth_factor

    def multipliers(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(price multiplier, spread factor) for every time in t (int64 ms)."""
        if not self.segments:
            ones = np.ones(len(t))
            return ones, ones
        idx = np.searchsorted(np.array(self.starts, dtype=np.int64), t, side="right") - 1
        price = np.ones(len(t))
        spread = np.ones(len(t))
        for i, seg in enumerate(self.segments):
            mask = idx == i
            if not mask.any():
                continue
            trend = 1.0 + seg.trend_per_ms * (t[mask] - seg.start_ms).astype(np.float64)
            price[mask] = seg.price_factor * np.maximum(trend, MIN_TREND_MULTIPLIER)
            spread[mask] = seg.spread_factor
        return price, spread

    def prints_between(self, start_ms: int, end_ms: int) -> list[Segment]:
        """Segments opening with a print at start_ms <= start < end_ms."""
        return [s for s in self.segments if s.opens_with_print and start_ms <= s.start_ms < end_ms]
