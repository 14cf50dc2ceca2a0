"""Chart geometry of the admin panel: nice ticks that cover the data, a minimum y range so
a tiny move looks tiny, and x ticks at round UTC times."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.web.admin.charts import (
    HEIGHT,
    bar_chart,
    line_chart,
    nice_step,
    time_ticks,
    value_label,
    value_range,
    value_ticks,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 30, 1, 52, 2, tzinfo=UTC)
NICE_MANTISSAS = {D(1), D(2), D("2.5"), D(5)}


def mantissa(step: D) -> D:
    return step.scaleb(-step.adjusted()).normalize()


def series(values: list[str], every: timedelta = timedelta(minutes=15)):
    start = NOW - every * (len(values) - 1)
    return [(start + every * n, D(v)) for n, v in enumerate(values)]


@pytest.mark.parametrize(
    ("span", "step"),
    [(D("10"), D("2")), (D("12"), D("2.5")), (D("0.36"), D("0.1")), (D("4500"), D("1000"))],
)
def test_nice_steps(span, step):
    assert nice_step(span) == step


@given(
    low=st.decimals(min_value=-(10**6), max_value=10**6, places=4, allow_nan=False),
    width=st.decimals(min_value=D("0.0001"), max_value=10**6, places=4, allow_nan=False),
)
def test_ticks_are_nice_and_cover_the_data(low, width):
    high = low + width
    ticks = value_ticks(low, high)
    steps = {b - a for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1  # evenly spaced
    [step] = steps
    assert mantissa(step) in NICE_MANTISSAS
    assert ticks[0] <= low and ticks[-1] >= high  # cover the data
    assert ticks[0] > low - step and ticks[-1] < high + step  # and not much more
    assert 3 <= len(ticks) <= 8
    assert all((tick / step) == (tick / step).to_integral_value() for tick in ticks)


def test_tick_labels_carry_their_unit_and_only_the_decimals_the_step_needs():
    assert value_label(D("1000"), D("2"), "USDT") == "1,000 USDT"
    assert value_label(D("1002.5"), D("2.5"), "USDT") == "1,002.5 USDT"
    assert value_label(D("-0.25"), D("0.25"), "%") == "-0.25 %"
    assert value_label(D("-0.0"), D("0.5"), "%") == "0.0 %"


def test_a_tiny_move_does_not_fill_the_chart():
    """0.36 USDT on a 1,000 USDT account: the y axis spans at least 1 % of it (10 USDT)."""
    chart = line_chart(series(["1000", "999.64", "1000"]), unit="USDT", min_span=D("10"))
    assert chart is not None
    ys = [float(point.split(",")[1]) for point in chart.points.split()]
    plot_height = chart.axes.bottom - chart.axes.top
    assert max(ys) - min(ys) < 0.05 * plot_height
    labels = [tick.label for tick in chart.axes.y_ticks]
    assert labels[0].endswith(" USDT") and chart.axes.high - chart.axes.low >= 10
    assert any(label == "1,000 USDT" for label in labels)


def test_a_big_move_uses_the_height():
    chart = line_chart(series(["1000", "900", "1100"]), unit="USDT", min_span=D("10"))
    ys = [float(point.split(",")[1]) for point in chart.points.split()]
    assert max(ys) - min(ys) > 0.6 * (chart.axes.bottom - chart.axes.top)
    assert all(chart.axes.top <= y <= chart.axes.bottom for y in ys)


def test_reference_marks_and_included_values():
    chart = line_chart(
        series(["-0.036"]),
        unit="%",
        min_span=D(1),
        include=[D(0), D(-5)],
        marks=[(D(-5), "halt at 5.00 %"), (D(-50), "off the chart")],
    )
    assert chart.axes.low <= -5 and chart.axes.high >= 0
    assert [mark.label for mark in chart.axes.marks] == ["halt at 5.00 %"]
    assert [tick.label for tick in chart.axes.y_ticks][-1] == "0 %"


@pytest.mark.parametrize(
    ("span", "pattern", "step"),
    [
        (timedelta(minutes=2), r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", timedelta(seconds=30)),
        (timedelta(hours=5), r"\d{4}-\d\d-\d\dT\d\d:00Z", timedelta(hours=1)),
        (timedelta(days=1), r"\d{4}-\d\d-\d\dT\d\d:00Z", timedelta(hours=6)),
        (timedelta(days=7), r"\d{4}-\d\d-\d\d", timedelta(days=1)),
        (timedelta(days=30), r"\d{4}-\d\d-\d\d", timedelta(days=7)),
    ],
)
def test_x_ticks_are_round_utc_times_in_the_iso_format(span, pattern, step):
    ticks = time_ticks(NOW - span, NOW, 864)
    assert 2 <= len(ticks) <= 9
    for when, label in ticks:
        assert when.tzinfo is UTC and NOW - span <= when <= NOW
        assert re.fullmatch(pattern, label)
        assert when.timestamp() % step.total_seconds() == 0
    assert {b - a for (a, _), (b, _) in itertools.pairwise(ticks)} == {step}


def test_x_ticks_sit_on_their_times():
    chart = line_chart(
        series(["1", "2", "3", "4", "5"], timedelta(hours=1)), unit="USDT", min_span=D(1)
    )
    first, last = NOW - timedelta(hours=4), NOW
    for tick in chart.axes.x_ticks:
        when = datetime.strptime(tick.label, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
        share = (when - first) / (last - first)
        assert tick.at == pytest.approx(
            chart.axes.left + share * (chart.axes.right - chart.axes.left)
        )


def test_no_x_label_is_cut_off_at_the_right_edge():
    for seconds in range(0, 60, 5):  # wherever the newest snapshot falls between round times
        end = NOW.replace(second=0) + timedelta(seconds=seconds)
        data = [(end - timedelta(minutes=3), D(1)), (end, D(2))]
        chart = line_chart(data, unit="USDT", min_span=D(1))
        assert chart.axes.x_ticks
        for tick in chart.axes.x_ticks:
            assert tick.at + len(tick.label) * 6.6 / 2 <= chart.width


def test_one_snapshot_is_a_visible_point():
    chart = line_chart(series(["1000"]), unit="USDT", min_span=D(10))
    assert chart.end_x == pytest.approx(chart.axes.right)
    assert chart.axes.top < chart.end_y < chart.axes.bottom
    assert chart.axes.x_ticks  # a minute of axis, not a zero-width one


def test_daily_pnl_bars_have_a_zero_line_dates_and_a_minimum_range():
    days = [(NOW - timedelta(days=n), D(v)) for n, v in ((2, "-0.36"), (1, "0.12"), (0, "0"))]
    chart = bar_chart(days, unit="USDT", min_span=D(10))
    assert chart.axes.low <= -0.36 and chart.axes.high >= 0.12
    assert chart.axes.high - chart.axes.low >= 10
    assert all(bar.height < 0.05 * (chart.axes.bottom - chart.axes.top) for bar in chart.bars)
    assert [bar.positive for bar in chart.bars] == [False, True, True]
    assert chart.bars[0].y == pytest.approx(chart.zero_y)  # a loss hangs from the zero line
    assert [tick.label for tick in chart.axes.x_ticks] == ["2026-11-28", "2026-11-29", "2026-11-30"]


def test_many_days_label_every_few_bars_and_always_the_newest():
    days = [(NOW - timedelta(days=n), D(n)) for n in range(29, -1, -1)]
    chart = bar_chart(days, unit="USDT", min_span=D(10))
    labels = [tick.label for tick in chart.axes.x_ticks]
    assert 3 <= len(labels) <= 10 and labels[-1] == "2026-11-30"


def test_nothing_to_draw():
    assert line_chart([], unit="USDT", min_span=D(1)) is None
    assert bar_chart([], unit="USDT", min_span=D(1)) is None
    assert value_range([D(5)], D(0)) == (D(4), D(6))
    assert HEIGHT > 0
