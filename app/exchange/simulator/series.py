"""The one tick/trade series every answer of the simulator comes from.

For a symbol and a range of whole minutes, `generate` returns every trade (time, price in
ticks, quantity in units, taker side, spread), computed with numpy from hashes of (symbol,
minute, position), so any range can be produced on its own and always gives the same trades.

The model, per minute m (UTC minutes since the epoch):

* trades: 1 + a hashed number around (trade_rate - 1) x activity; the first one (the opening
  print) at the minute's first millisecond, the others spread over the rest of the minute.
* mid price: the seed price at each minute's start, base x exp(three sinusoids + hashed
  noise), interpolated linearly inside the minute, times (1 + a little per-trade noise),
  times the scenario multiplier in force at the trade.
* spread (ticks): majors 1 (2 or 3 now and then), other tiers the symbol's fixed spread;
  a scenario's spread_factor f > 1 makes it floor(spread x f) + 1, never more than 1.8 x mid.
* the trade: a taker buy lifts the ask, a sell hits the bid, where
  bid = max(1, round(mid - spread / 2)) and ask = bid + spread.
* quantity: lognormal-ish around the symbol's mean trade size.

A scenario segment that changes the price or the spread adds one trade at its start (see
timeline.py). Candles are exact integer aggregates of these trades (see candles.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.exchange.simulator.hashing import hashes, subkey, unit, units
from app.exchange.simulator.timeline import Timeline
from app.exchange.simulator.universe import MAJOR, SymbolSpec

MINUTE_MS = 60_000
OPENING_SPAN_MS = 250  # trades after the opening print start this late in the minute
MAX_TRADES_PER_MINUTE = 200
MAX_MID_TICKS = 1e15  # keeps every price an exact int64
MAX_SPREAD_OF_MID = 1.8  # a widened spread never pushes the bid below 10 % of the mid
_QTY_NORM = (np.exp(1.25) - np.exp(-1.25)) / 2.5  # mean of exp(2.5 u - 1.25), u in [0, 1)
_INT64_SAFE = 2**62

# salts of the independent hash streams of a symbol
_S_COUNT, _S_COUNT2, _S_TRADE, _S_NOISE, _S_SPREAD, _S_PRINT = range(1, 7)


@dataclass(frozen=True, slots=True)
class TradeBatch:
    """Every trade of minutes [m0, m0 + count), in time order."""

    m0: int
    count: int
    t: np.ndarray  # int64 ms
    price: np.ndarray  # int64 ticks
    qty: np.ndarray  # int64 units
    buy: np.ndarray  # bool: the taker bought (the trade lifted the ask)
    spread: np.ndarray  # int64 ticks: the book's spread when it traded
    offsets: np.ndarray  # int64 [count + 1]: minute i's trades are offsets[i]:offsets[i + 1]

    def notional(self) -> np.ndarray:
        """price x qty per trade: int64 when safe, else Python ints (object array)."""
        bound = int(self.price.max(initial=0)) * int(self.qty.max(initial=0))
        if bound * (MAX_TRADES_PER_MINUTE + 56) < _INT64_SAFE:  # any minute's sum fits
            return self.price * self.qty
        return self.price.astype(object) * self.qty.astype(object)


def minute_prices(spec: SymbolSpec, first_minute: int, count: int) -> np.ndarray:
    """The seed model's price (in ticks, no scenario) at the start of each minute."""
    minutes = np.arange(first_minute, first_minute + count, dtype=np.int64)
    t = (minutes * MINUTE_MS).astype(np.float64)
    x = spec.noise_amp * (2.0 * units(subkey(spec.key, _S_NOISE), minutes) - 1.0)
    for amp, omega, phase in spec.waves:
        x += amp * np.sin(omega * t + phase)
    return spec.base_price * spec.tick_scale * np.exp(x)


def _mid_ticks(
    spec: SymbolSpec,
    timeline: Timeline,
    t: np.ndarray,
    local: np.ndarray,
    micro: np.ndarray,
    minute_price: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(mid in ticks, scenario spread factor or None) at each time of t, t in minute `local`
    of minute_price: the minute prices interpolated linearly, a little per-trade noise (micro
    in [0, 1)), the scenario multiplier."""
    frac = (t % MINUTE_MS).astype(np.float64) * (1.0 / MINUTE_MS)
    mid = minute_price[local] * (1.0 - frac) + minute_price[local + 1] * frac
    mid *= 1.0 + spec.micro_amp * (2.0 * micro - 1.0)
    if not timeline.segments:
        return mid, None
    multiplier, spread_factor = timeline.multipliers(t)
    return np.minimum(mid * multiplier, MAX_MID_TICKS), spread_factor


def natural_spread(spec: SymbolSpec, t: np.ndarray) -> np.ndarray:
    """The spread in ticks without scenarios (int64 array)."""
    if spec.tier != MAJOR:
        return np.full(len(t), spec.spread_ticks, dtype=np.int64)
    u = units(subkey(spec.key, _S_SPREAD), t // 5000)
    return (1 + (u > 0.90) + (u > 0.97)).astype(np.int64)


def natural_spread_at(spec: SymbolSpec, t_ms: int) -> int:
    """natural_spread for one moment (bit-identical to the array version)."""
    if spec.tier != MAJOR:
        return spec.spread_ticks
    u = unit(subkey(spec.key, _S_SPREAD), t_ms // 5000)
    return 1 + (u > 0.90) + (u > 0.97)


def effective_spread(natural: np.ndarray, factor: np.ndarray | None, mid: np.ndarray) -> np.ndarray:
    if factor is None:
        return natural
    widened = np.where(factor > 1.0, np.floor(natural * factor) + 1, natural)
    cap = np.maximum(1.0, np.floor(MAX_SPREAD_OF_MID * mid))
    return np.minimum(widened, cap).astype(np.int64)


def _quotes(spec, timeline, t, local, micro, minute_price):
    mid, factor = _mid_ticks(spec, timeline, t, local, micro, minute_price)
    spread = effective_spread(natural_spread(spec, t), factor, mid)
    bid = np.maximum(1, np.floor(mid - spread * 0.5 + 0.5)).astype(np.int64)
    return bid, spread


def _draws(spec: SymbolSpec, salt: int, hash_idx: np.ndarray) -> tuple[np.ndarray, ...]:
    """(u_time, u_micro, u_qty in [0, 1), buy) from one 64-bit hash per trade."""
    h = hashes(subkey(spec.key, salt), hash_idx)
    u_time = (h >> np.uint64(32)).astype(np.float64) * 2.0**-32
    u_qty = ((h >> np.uint64(11)) & np.uint64(0x1FFFFF)).astype(np.float64) * 2.0**-21
    u_micro = ((h >> np.uint64(1)) & np.uint64(0x3FF)).astype(np.float64) * 2.0**-10
    buy = (h & np.uint64(1)).astype(bool)
    return u_time, u_micro, u_qty, buy


def _quantities(spec: SymbolSpec, u: np.ndarray) -> np.ndarray:
    size = spec.trade_units * np.exp(2.5 * u - 1.25) / _QTY_NORM
    return np.maximum(1, np.rint(size)).astype(np.int64)


def generate(spec: SymbolSpec, timeline: Timeline, m0: int, count: int) -> TradeBatch:
    """Every trade of minutes [m0, m0 + count); minutes before the listing must be excluded
    by the caller."""
    minutes = np.arange(m0, m0 + count, dtype=np.int64)
    omega, phase = spec.volume_wave
    activity = 1.0 + 0.25 * np.sin(omega * (minutes * MINUTE_MS).astype(np.float64) + phase)
    draw = (spec.trade_rate - 1.0) * activity * 2.0 * units(
        subkey(spec.key, _S_COUNT), minutes
    ) + units(subkey(spec.key, _S_COUNT2), minutes)
    n = 1 + np.minimum(np.floor(draw).astype(np.int64), MAX_TRADES_PER_MINUTE - 1)
    starts = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(n, out=starts[1:])
    local = np.repeat(np.arange(count, dtype=np.int64), n)
    seq = np.arange(int(starts[-1]), dtype=np.int64) - starts[local]
    hash_idx = (local + m0) * 1024 + seq
    u_time, u_micro, u_qty, buy = _draws(spec, _S_TRADE, hash_idx)
    gaps = (MINUTE_MS - OPENING_SPAN_MS) / np.maximum(n[local] - 1, 1).astype(np.float64)
    later = OPENING_SPAN_MS + np.floor((seq - 1 + u_time) * gaps).astype(np.int64)
    t = (local + m0) * MINUTE_MS + np.where(seq == 0, 0, later)
    minute_price = minute_prices(spec, m0, count + 1)
    bid, spread = _quotes(spec, timeline, t, local, u_micro, minute_price)
    price = np.where(buy, bid + spread, bid)
    qty = _quantities(spec, u_qty)

    prints = timeline.prints_between(m0 * MINUTE_MS, (m0 + count) * MINUTE_MS)
    if prints:
        pt = np.array([s.start_ms for s in prints], dtype=np.int64)
        _, p_micro, p_qty, _ = _draws(spec, _S_PRINT, pt)
        p_local = pt // MINUTE_MS - m0
        p_bid, p_spread = _quotes(spec, timeline, pt, p_local, p_micro, minute_price)
        p_buy = np.array([s.print_is_buy for s in prints])
        t = np.concatenate([t, pt])
        order = np.lexsort((np.arange(len(t)), t))  # by time, prints after trades of the same ms
        t = t[order]
        price = np.concatenate([price, np.where(p_buy, p_bid + p_spread, p_bid)])[order]
        qty = np.concatenate([qty, _quantities(spec, p_qty)])[order]
        buy = np.concatenate([buy, p_buy])[order]
        spread = np.concatenate([spread, p_spread])[order]
        n = n + np.bincount(p_local, minlength=count)
        np.cumsum(n, out=starts[1:])
    return TradeBatch(m0, count, t, price, qty, buy, spread, starts)


@dataclass(frozen=True, slots=True)
class MinuteArrays:
    """Per-minute aggregates of a TradeBatch: int64 arrays, quote possibly Python ints."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote: np.ndarray
    count: np.ndarray


def minute_arrays(batch: TradeBatch) -> MinuteArrays:
    first = batch.offsets[:-1]
    last = batch.offsets[1:] - 1
    return MinuteArrays(
        open=batch.price[first],
        high=np.maximum.reduceat(batch.price, first),
        low=np.minimum.reduceat(batch.price, first),
        close=batch.price[last],
        volume=np.add.reduceat(batch.qty, first),
        quote=np.add.reduceat(batch.notional(), first),
        count=np.diff(batch.offsets),
    )
