"""Chart geometry for inline SVG, computed server-side so the panel needs no JS library."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

WIDTH = 720
HEIGHT = 220
PAD_X = 8
PAD_Y = 12


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    points: str  # "x,y x,y ..." for an SVG polyline
    low: Decimal
    high: Decimal
    first: datetime
    last: datetime
    latest: Decimal
    end_x: float  # the newest point, marked so a single snapshot is visible too
    end_y: float


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    positive: bool
    when: datetime
    value: Decimal


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    zero_y: float
    bars: list[Bar]


def line_chart(series: Sequence[tuple[datetime, Decimal]]) -> LineChart | None:
    """A polyline of the values over time, scaled into the chart box; None without data."""
    if not series:
        return None
    values = [value for _, value in series]
    low, high = min(values), max(values)
    span = float(high - low) or 1.0
    start = series[0][0]
    duration = (series[-1][0] - start).total_seconds() or 1.0
    inner_w, inner_h = WIDTH - 2 * PAD_X, HEIGHT - 2 * PAD_Y
    points = []
    x = y = 0.0
    for when, value in series:
        x = PAD_X + inner_w * (when - start).total_seconds() / duration
        y = PAD_Y + inner_h * (1 - float(value - low) / span)
        points.append(f"{x:.1f},{y:.1f}")
    return LineChart(
        WIDTH, HEIGHT, " ".join(points), low, high, start, series[-1][0], values[-1], x, y
    )


def bar_chart(series: Sequence[tuple[datetime, Decimal]]) -> BarChart | None:
    """Bars up from (or down to) a zero line, one per value; None without data."""
    if not series:
        return None
    values = [float(value) for _, value in series]
    top, bottom = max(max(values), 0.0), min(min(values), 0.0)
    span = (top - bottom) or 1.0
    inner_h = HEIGHT - 2 * PAD_Y
    zero_y = PAD_Y + inner_h * top / span
    slot = (WIDTH - 2 * PAD_X) / len(series)
    bars = []
    for index, (when, value) in enumerate(series):
        size = inner_h * abs(float(value)) / span
        y = zero_y - size if value >= 0 else zero_y
        bars.append(
            Bar(PAD_X + index * slot + slot * 0.1, y, slot * 0.8, size, value >= 0, when, value)
        )
    return BarChart(WIDTH, HEIGHT, zero_y, bars)
