"""Kline calendar and candle selection: which candles a request gets, each an exact Agg.

Alignment is UTC: 1d candles open at 00:00, 1W candles on Monday 00:00, 1M candles on the 1st
of the month. closeTime = openTime + the interval (the next candle's openTime), as on MEXC.
No candle opens before the symbol's listing day. "8h" exists for the WebSocket's Hour8 only.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

from app.exchange.simulator.candles import HOUR_MS, MINUTE_MS, Agg, SymbolSeries, _group_aggs

DAY_MS = 86_400_000
INTERVAL_MS = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "60m": HOUR_MS,
    "4h": 4 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "1d": DAY_MS,
    "1W": 7 * DAY_MS,
}
REST_INTERVALS = ("1m", "5m", "15m", "30m", "60m", "4h", "1d", "1W", "1M")
KLINE_DEFAULT_LIMIT = 500
KLINE_MAX_LIMIT = 500  # MEXC documents 1000 but serves at most 500
_WEEK_OFFSET_MS = 4 * DAY_MS  # 1970-01-01 was a Thursday; weekly candles open on Mondays


def _month_index(t_ms: int) -> int:
    d = datetime.fromtimestamp(t_ms // 1000, UTC)
    return (d.year - 1970) * 12 + d.month - 1


def _month_start(index: int) -> int:
    year, month0 = divmod(index, 12)
    return calendar.timegm((1970 + year, month0 + 1, 1, 0, 0, 0)) * 1000


def floor_open(t_ms: int, interval: str) -> int:
    """openTime of the candle containing t_ms."""
    if interval == "1M":
        return _month_start(_month_index(t_ms))
    ms = INTERVAL_MS[interval]
    offset = _WEEK_OFFSET_MS if interval == "1W" else 0
    return (t_ms - offset) // ms * ms + offset


def next_open(open_ms: int, interval: str) -> int:
    if interval == "1M":
        return _month_start(_month_index(open_ms) + 1)
    return open_ms + INTERVAL_MS[interval]


def prev_open(open_ms: int, interval: str) -> int:
    if interval == "1M":
        return _month_start(_month_index(open_ms) - 1)
    return open_ms - INTERVAL_MS[interval]


def candle_opens(
    interval: str,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
    now_ms: int,
    listed_at_ms: int,
) -> list[int]:
    """openTimes of the candles a klines request gets, oldest first.

    With start_ms: candles opening at or after it; with end_ms: opening before it (exclusive);
    with neither: the latest `limit`, the last one in progress. Never a candle opening after
    now_ms or closing before the listing.
    """
    current = floor_open(now_ms, interval)
    first = floor_open(listed_at_ms, interval)
    opens: list[int] = []
    if start_ms is not None:
        o = floor_open(start_ms, interval)
        if o < start_ms:
            o = next_open(o, interval)
        o = max(o, first)
        while len(opens) < limit and o <= current and (end_ms is None or o < end_ms):
            opens.append(o)
            o = next_open(o, interval)
    else:
        o = current if end_ms is None else min(current, floor_open(end_ms - 1, interval))
        while len(opens) < limit and o >= first:
            opens.append(o)
            o = prev_open(o, interval)
        opens.reverse()
    return opens


def candles(
    series: SymbolSeries, interval: str, opens: list[int], now_ms: int
) -> list[tuple[int, Agg]]:
    """(openTime, candle) for every open with trades, each candle the exact aggregate of its
    trades up to now_ms."""
    if not opens:
        return []
    span_end = min(next_open(opens[-1], interval), now_ms // MINUTE_MS * MINUTE_MS)
    if interval in ("1m", "5m", "15m", "30m"):
        return _sub_hour(series, INTERVAL_MS[interval] // MINUTE_MS, opens, now_ms)
    if interval in ("60m", "4h", "8h"):
        series.ensure_hours(range(opens[0] // HOUR_MS, span_end // HOUR_MS))
    else:
        series.ensure_days(range(opens[0] // DAY_MS, span_end // DAY_MS))
    out = []
    for o in opens:
        agg = series.window(o, next_open(o, interval), now_ms)
        if agg is not None:
            out.append((o, agg))
    return out


def _sub_hour(
    series: SymbolSeries, size: int, opens: list[int], now_ms: int
) -> list[tuple[int, Agg]]:
    current = now_ms // MINUTE_MS * MINUTE_MS
    series.fill_minute_blocks(range(opens[0] // HOUR_MS, opens[-1] // HOUR_MS + 1))
    groups: dict[int, list[Agg] | None] = {}
    out = []
    for o in opens:
        hour = o // HOUR_MS
        end = o + size * MINUTE_MS
        if end > current:
            agg = series.window(o, end, now_ms)
        else:
            if hour not in groups:
                block = series.minute_block(hour)
                groups[hour] = _group_aggs(block.minutes, size) if block is not None else None
            hour_groups = groups[hour]
            agg = hour_groups[(o - hour * HOUR_MS) // (size * MINUTE_MS)] if hour_groups else None
        if agg is not None:
            out.append((o, agg))
    return out
