"""Chart geometry for inline SVG, computed server-side so the panel needs no JS library.

Every chart has a y axis with "nice" tick values (1, 2, 2.5 or 5 times a power of ten) that
carry their unit, and an x axis of UTC times at round steps (a minute, an hour, a day...). The
y range never shrinks below `min_span`, so a move of a few cents on a 1,000 USDT account draws
as the small wiggle it is instead of filling the chart's height.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

WIDTH = 1000
HEIGHT = 260
LEFT = 112  # room for "1,000.5 USDT"
RIGHT = 24
TOP = 14
BOTTOM = 30
CHAR_PX = 6.6  # the width of one tick-label character at the panel's 11px
LABEL_GAP_PX = 24
Y_TICKS = 5  # at most about this many intervals on a y axis
MAX_BAR_PX = 28

# Steps of the time axis, in seconds: round minutes, hours and days (UTC).
TIME_STEPS = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
    2 * 86400,
    7 * 86400,
    14 * 86400,
    30 * 86400,
)
MIN_DURATION = timedelta(minutes=1)


@dataclass(frozen=True)
class Tick:
    at: float  # pixels along the axis (x for the time axis, y for the value axis)
    label: str


@dataclass(frozen=True)
class Mark:
    """A labelled horizontal reference line (the starting capital, a limit)."""

    y: float
    label: str


@dataclass(frozen=True)
class Axes:
    width: int
    height: int
    left: float
    top: float
    right: float  # x of the plot's right edge
    bottom: float  # y of the plot's bottom edge
    unit: str
    low: Decimal  # the y axis' range
    high: Decimal
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    marks: list[Mark] = field(default_factory=list)

    def y(self, value: Decimal) -> float:
        span = float(self.high - self.low)
        return self.bottom - (self.bottom - self.top) * float(value - self.low) / span


@dataclass(frozen=True)
class LineChart:
    axes: Axes
    points: str  # "x,y x,y ..." for an SVG polyline
    low: Decimal  # of the data
    high: Decimal
    first: datetime
    last: datetime
    latest: Decimal
    end_x: float  # the newest point, marked so a single snapshot is visible too
    end_y: float

    @property
    def width(self) -> int:
        return self.axes.width

    @property
    def height(self) -> int:
        return self.axes.height


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
    axes: Axes
    zero_y: float
    bars: list[Bar]

    @property
    def width(self) -> int:
        return self.axes.width

    @property
    def height(self) -> int:
        return self.axes.height


# The value axis -------------------------------------------------------------------------------


def nice_step(span: Decimal, intervals: int = Y_TICKS) -> Decimal:
    """The smallest of 1, 2, 2.5, 5 x 10^k that cuts `span` into at most `intervals` steps."""
    if span <= 0:
        raise ValueError(f"span must be positive, got {span}")
    raw = span / intervals
    exponent = raw.adjusted()  # raw = d.ddd x 10^exponent
    for mantissa in ("1", "2", "2.5", "5", "10"):
        step = Decimal(mantissa).scaleb(exponent)
        if step >= raw:
            return step
    raise AssertionError("unreachable: 10 x 10^k >= raw")


def value_range(
    values: Iterable[Decimal], min_span: Decimal, include: Iterable[Decimal] = ()
) -> tuple[Decimal, Decimal]:
    """The data's range (with `include`), widened about its middle to at least `min_span`."""
    every = [*values, *include]
    low, high = min(every), max(every)
    if high - low < min_span:
        middle = (low + high) / 2
        low, high = middle - min_span / 2, middle + min_span / 2
    if high == low:  # min_span 0 and one value
        low, high = low - 1, high + 1
    return low, high


def value_ticks(low: Decimal, high: Decimal, intervals: int = Y_TICKS) -> list[Decimal]:
    """Tick values at a nice step, from at or below `low` to at or above `high`."""
    step = nice_step(high - low, intervals)
    first = (low / step).to_integral_value(ROUND_FLOOR)
    last = (high / step).to_integral_value(ROUND_CEILING)
    return [(first + n) * step for n in range(int(last - first) + 1)]


def value_label(value: Decimal, step: Decimal, unit: str) -> str:
    """ "1,005 USDT", "1,002.5 USDT", "-0.5 %": as many decimals as the step needs."""
    places = max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]
    number = value.quantize(Decimal(1).scaleb(-places)) + 0  # + 0: no "-0"
    text = f"{number:,.{places}f}" if unit == "USDT" else f"{number:.{places}f}"
    return f"{text} {unit}"


# The time axis --------------------------------------------------------------------------------


def time_label(when: datetime, step_seconds: int) -> str:
    """The one ISO format, cut to what the step needs: a date, minutes or seconds (UTC)."""
    when = when.astimezone(UTC)
    if step_seconds >= 86400:
        return when.strftime("%Y-%m-%d")
    if step_seconds >= 60:
        return when.strftime("%Y-%m-%dT%H:%MZ")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _label_chars(step_seconds: int) -> int:
    return len(time_label(datetime(2000, 1, 1, tzinfo=UTC), step_seconds))


def time_ticks(start: datetime, end: datetime, width_px: float) -> list[tuple[datetime, str]]:
    """Round UTC times between `start` and `end`, as many as fit `width_px` with labels."""
    span = (end - start).total_seconds()
    step = TIME_STEPS[-1]
    for candidate in TIME_STEPS:
        fits = int(width_px // (_label_chars(candidate) * CHAR_PX + LABEL_GAP_PX))
        if span / candidate <= max(1, fits - 1):
            step = candidate
            break
    epoch = start.timestamp()
    first = math.ceil(epoch / step) * step
    ticks = []
    moment = first
    while moment <= end.timestamp() + 1e-6:
        when = datetime.fromtimestamp(moment, UTC)
        ticks.append((when, time_label(when, step)))
        moment += step
    return ticks


# Charts ---------------------------------------------------------------------------------------


def _frame(
    low: Decimal,
    high: Decimal,
    unit: str,
    x_ticks: list[Tick],
    marks: Sequence[tuple[Decimal, str]] = (),
) -> Axes:
    ticks = value_ticks(low, high)
    step = ticks[1] - ticks[0]
    bottom = HEIGHT - BOTTOM
    low, high = ticks[0], ticks[-1]

    def y(value: Decimal) -> float:
        return bottom - (bottom - TOP) * float(value - low) / float(high - low)

    return Axes(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        top=TOP,
        right=WIDTH - RIGHT,
        bottom=bottom,
        unit=unit,
        low=low,
        high=high,
        x_ticks=x_ticks,
        y_ticks=[Tick(y(v), value_label(v, step, unit)) for v in ticks],
        marks=[Mark(y(v), text) for v, text in marks if low <= v <= high],
    )


def line_chart(
    series: Sequence[tuple[datetime, Decimal]],
    *,
    unit: str,
    min_span: Decimal,
    include: Sequence[Decimal] = (),
    marks: Sequence[tuple[Decimal, str]] = (),
) -> LineChart | None:
    """A polyline of the values over time on labelled axes; None without data.

    The y range covers the data and `include`, and is at least `min_span` tall; `marks` are
    reference lines drawn when they fall inside it."""
    if not series:
        return None
    values = [value for _, value in series]
    start, end = series[0][0], series[-1][0]
    if end - start < MIN_DURATION:  # one snapshot, or a few seconds of them
        start = end - MIN_DURATION
    x_left, x_right = float(LEFT), float(WIDTH - RIGHT)
    duration = (end - start).total_seconds()

    def x_of(when: datetime) -> float:
        return x_left + (x_right - x_left) * (when - start).total_seconds() / duration

    x_ticks = [
        Tick(x_of(when), text)
        for when, text in time_ticks(start, end, x_right - x_left)
        if x_of(when) + len(text) * CHAR_PX / 2 <= WIDTH  # a label cut off at the edge: none
    ]
    low, high = value_range(values, min_span, include)
    axes = _frame(low, high, unit, x_ticks, marks)
    points = [f"{x_of(when):.1f},{axes.y(value):.1f}" for when, value in series]
    return LineChart(
        axes=axes,
        points=" ".join(points),
        low=min(values),
        high=max(values),
        first=series[0][0],
        last=end,
        latest=values[-1],
        end_x=x_of(end),
        end_y=axes.y(values[-1]),
    )


def bar_chart(
    series: Sequence[tuple[datetime, Decimal]], *, unit: str, min_span: Decimal
) -> BarChart | None:
    """One bar per (day, value), up from or down to the zero line; None without data."""
    if not series:
        return None
    values = [value for _, value in series]
    low, high = value_range(values, min_span, include=[Decimal(0)])
    x_left, x_right = float(LEFT), float(WIDTH - RIGHT)
    slot = (x_right - x_left) / len(series)
    fits = max(1, int((x_right - x_left) // (_label_chars(86400) * CHAR_PX + LABEL_GAP_PX)))
    stride = math.ceil(len(series) / fits)
    x_ticks = [
        Tick(x_left + slot * (index + 0.5), time_label(when, 86400))
        for index, (when, _) in enumerate(series)
        if (len(series) - 1 - index) % stride == 0  # the newest day always has its label
    ]
    axes = _frame(low, high, unit, x_ticks)
    zero_y = axes.y(Decimal(0))
    bars = []
    for index, (when, value) in enumerate(series):
        top = axes.y(value) if value >= 0 else zero_y
        size = abs(axes.y(value) - zero_y)
        width = min(slot * 0.7, MAX_BAR_PX)  # one day is a bar, not a slab across the chart
        x = x_left + slot * index + (slot - width) / 2
        bars.append(Bar(x, top, width, size, value >= 0, when, value))
    return BarChart(axes, zero_y, bars)
