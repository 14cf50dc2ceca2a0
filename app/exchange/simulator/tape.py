"""The trade tape: the trades /api/v3/trades, /api/v3/aggTrades and the deals stream serve.

Every trade comes from the one series (series.py). A trade's id is its minute (since the
epoch) x 1000 + its position in that minute; REST answers carry MEXC's null ids, the
WebSocket deals carry it as tradeId.
"""

from __future__ import annotations

from typing import NamedTuple

from app.exchange.simulator.candles import HOUR_MS, MINUTE_MS, SymbolSeries, TradeBlock


class Trade(NamedTuple):
    t: int
    price: int  # ticks
    qty: int  # units
    buy: bool  # the taker bought
    trade_id: int


def _rows(block: TradeBlock, start: int, stop: int) -> list[Trade]:
    b = block.batch
    times = b.t[start:stop].tolist()
    prices = b.price[start:stop].tolist()
    qtys = b.qty[start:stop].tolist()
    buys = b.buy[start:stop].tolist()
    offsets = b.offsets.tolist()
    hour_start = b.m0
    out = []
    for i, (t, p, q, buy) in enumerate(zip(times, prices, qtys, buys, strict=True)):
        minute = t // MINUTE_MS
        position = start + i - offsets[minute - hour_start]
        out.append(Trade(t, p, q, buy, minute * 1000 + position))
    return out


def recent(series: SymbolSeries, now_ms: int, limit: int) -> list[Trade]:
    """The last `limit` trades at or before now_ms, oldest first."""
    chunks: list[list[Trade]] = []
    found = 0
    hour = now_ms // HOUR_MS
    stop: int | None = None
    while found < limit:
        block = series.trade_block(hour)
        if block is None:
            break
        end = block.upto(now_ms) if stop is None else len(block.batch.t)
        stop = end
        start = max(0, end - (limit - found))
        chunks.append(_rows(block, start, end))
        found += end - start
        hour -= 1
    chunks.reverse()
    return [trade for chunk in chunks for trade in chunk]


def between(series: SymbolSeries, start_ms: int, end_ms: int, limit: int) -> list[Trade]:
    """The first `limit` trades with start_ms <= time <= end_ms, oldest first."""
    out: list[Trade] = []
    hour = max(start_ms, series.spec.listed_at_ms) // HOUR_MS
    while len(out) < limit and hour * HOUR_MS <= end_ms:
        block = series.trade_block(hour)
        if block is not None:
            lo = block.upto(start_ms - 1)
            hi = block.upto(end_ms)
            out.extend(_rows(block, lo, min(hi, lo + limit - len(out))))
        hour += 1
    return out
