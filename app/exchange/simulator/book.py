"""The order book model: the quote the last trade left, plus levels behind it.

* Top of book at time t: the last trade at or before t traded at the bid (a taker sell) or the
  ask (a taker buy) of a book `spread` ticks wide; the book keeps that quote until the next
  trade. When the spread in force at t differs (a major's spread flickering, a scenario's
  spread_factor), a wider book widens around that quote and a narrower one keeps the side the
  trade printed on, so the last price always lies inside [bid, ask].
* Levels: the best price, then prices on the symbol's grid (multiples of level_step_ticks)
  behind it. The NEAR_LEVELS nearest levels' quantities change every second; deeper ones are
  tied to their price, so a move of the best price changes only the levels near the top.
* A scenario's depth_factor scales every quantity (half-even, at least one unit).
* Version (depth lastUpdateId, WebSocket depth versions): base + 64 per 100 ms + the number of
  trades so far in the current 100 ms, so it grows with every change of the book.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

from app.exchange.simulator.candles import LastTrade, SymbolSeries
from app.exchange.simulator.hashing import subkey, unit, units
from app.exchange.simulator.series import MAX_SPREAD_OF_MID, natural_spread_at

NEAR_LEVELS = 20
_LEVEL_GROWTH = 0.35
_S_TOP_BID, _S_TOP_ASK, _S_DEEP_BID, _S_DEEP_ASK = 21, 22, 23, 24


@dataclass(frozen=True, slots=True)
class Top:
    """The best bid and ask at a moment (ticks and units)."""

    bid: int
    bid_qty: int
    ask: int
    ask_qty: int
    version: int
    last: LastTrade


def _uncapped_spread(series: SymbolSeries, t_ms: int) -> int:
    natural = natural_spread_at(series.spec, t_ms)
    factor = series.timeline.spread_factor(t_ms)
    return int(natural * factor) + 1 if factor > 1.0 else natural


def spread_at(series: SymbolSeries, t_ms: int, last: LastTrade) -> int:
    """The spread in force at t_ms, in ticks: the last trade's own spread while the rule is
    unchanged since it, else capped like the trades' at 1.8 x the mid it was quoted around."""
    spread = _uncapped_spread(series, t_ms)
    if spread == _uncapped_spread(series, last.t):
        return last.spread
    mid = last.price - last.spread / 2 if last.buy else last.price + last.spread / 2
    return max(1, min(spread, int(MAX_SPREAD_OF_MID * mid)))


def quote(series: SymbolSeries, t_ms: int, last: LastTrade) -> tuple[int, int]:
    """(bid, ask) in ticks at t_ms, given the last trade at or before it."""
    spread = spread_at(series, t_ms, last)
    if last.buy:
        ask0, bid0 = last.price, last.price - last.spread
    else:
        bid0, ask0 = last.price, last.price + last.spread
    widen = spread - last.spread
    if widen >= 0:
        bid, ask = bid0 - widen // 2, ask0 + (widen - widen // 2)
    elif last.buy:
        bid, ask = ask0 - spread, ask0
    else:
        bid, ask = bid0, bid0 + spread
    bid = max(1, bid)
    return bid, max(ask, bid + 1)


def version(series: SymbolSeries, t_ms: int) -> int:
    slot_start = t_ms // 100 * 100
    block = series.trade_block(t_ms // 3_600_000)
    in_slot = 0
    if block is not None:
        in_slot = block.upto(t_ms) - int(np.searchsorted(block.batch.t, slot_start, side="left"))
    return series.spec.update_id_base + t_ms // 100 * 64 + min(63, in_slot)


def scale_units(units_: int, factor: Decimal | None) -> int:
    """units * factor, rounded half-even, at least one unit."""
    if factor is None:
        return units_
    scaled = (Decimal(units_) * factor).to_integral_value(ROUND_HALF_EVEN)
    return max(1, int(scaled))


def _near_qty(series: SymbolSeries, salt: int, level: int, t_ms: int) -> int:
    jitter = 0.6 + 0.8 * unit(subkey(series.spec.key, salt), level * 1_000_003 + t_ms // 1000)
    return max(1, round(series.spec.level_units * (1.0 + _LEVEL_GROWTH * level) * jitter))


def top(series: SymbolSeries, t_ms: int) -> Top | None:
    """Best bid and ask at t_ms; None before the symbol's first trade."""
    last = series.last_trade(t_ms)
    if last is None:
        return None
    bid, ask = quote(series, t_ms, last)
    factor = series.timeline.depth_factor(t_ms)
    return Top(
        bid,
        scale_units(_near_qty(series, _S_TOP_BID, 0, t_ms), factor),
        ask,
        scale_units(_near_qty(series, _S_TOP_ASK, 0, t_ms), factor),
        version(series, t_ms),
        last,
    )


def grid(best: int, step: int, bid_side: bool, n: int) -> list[int]:
    """The prices of a side's first n levels: the best, then the step grid behind it (bids
    stop above zero)."""
    if bid_side:
        first = (best - 1) // step * step
        return [best, *(p for p in range(first, first - (n - 1) * step, -step) if p > 0)]
    first = -(-(best + 1) // step) * step
    return [best, *range(first, first + (n - 1) * step, step)]


def _salts(bid_side: bool) -> tuple[int, int]:
    return (_S_TOP_BID, _S_DEEP_BID) if bid_side else (_S_TOP_ASK, _S_DEEP_ASK)


def _deep_size(series: SymbolSeries) -> float:
    return series.spec.level_units * (1.0 + _LEVEL_GROWTH * NEAR_LEVELS)


def _side(
    series: SymbolSeries, best: int, n: int, t_ms: int, bid_side: bool
) -> list[tuple[int, int]]:
    spec = series.spec
    prices = grid(best, spec.level_step_ticks, bid_side, n)
    near_salt, deep_salt = _salts(bid_side)
    near = min(len(prices), NEAR_LEVELS)
    qtys = [_near_qty(series, near_salt, i, t_ms) for i in range(near)]
    if len(prices) > near:
        deep = units(subkey(spec.key, deep_salt), np.array(prices[near:], dtype=np.int64))
        qtys.extend(
            np.maximum(1, np.rint(_deep_size(series) * (0.5 + deep))).astype(np.int64).tolist()
        )
    factor = series.timeline.depth_factor(t_ms)
    return [(p, scale_units(q, factor)) for p, q in zip(prices, qtys, strict=True)]


def level_quantity(series: SymbolSeries, t_ms: int, best: Top, bid_side: bool, price: int) -> int:
    """The quantity at `price` on one side of the book `best` heads at t_ms (0: no level)."""
    step = series.spec.level_step_ticks
    head = best.bid if bid_side else best.ask
    if price == head:
        return best.bid_qty if bid_side else best.ask_qty
    if price <= 0 or (price > head if bid_side else price < head):
        return 0
    first = grid(head, step, bid_side, 2)[1]
    offset = first - price if bid_side else price - first
    if offset % step:
        return 0
    index = offset // step + 1
    near_salt, deep_salt = _salts(bid_side)
    if index < NEAR_LEVELS:
        qty = _near_qty(series, near_salt, index, t_ms)
    else:
        qty = max(
            1, round(_deep_size(series) * (0.5 + unit(subkey(series.spec.key, deep_salt), price)))
        )
    return scale_units(qty, series.timeline.depth_factor(t_ms))


def levels(
    series: SymbolSeries, t_ms: int, n: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]], Top] | None:
    """(bids best first, asks best first, top) with n levels a side (fewer only where a bid
    would reach zero); None before the first trade."""
    best = top(series, t_ms)
    if best is None:
        return None
    bids = _side(series, best.bid, n, t_ms, True)
    asks = _side(series, best.ask, n, t_ms, False)
    bids[0] = (best.bid, best.bid_qty)
    asks[0] = (best.ask, best.ask_qty)
    return bids, asks, best
