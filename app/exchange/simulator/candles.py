"""Candles as exact aggregates of the trade series, cached hierarchically and bounded.

Every aggregate (a candle, a 24h window, a partial minute) is an `Agg` of integers: prices in
ticks, volume in units, quote volume in ticks x units. A closed minute never changes, so:

* the trades of an hour (`TradeBlock`) and its 60 minute aggregates (`MinuteBlock`) are kept
  in LRU caches for the hours in use (the current one and the edges of the 24h windows);
* hour and day aggregates are kept in LRU caches of their own, filled in batches (one numpy
  pass over up to a week of trades), so a 24h window is at most ~120 minutes + 23 hours and a
  monthly candle ~31 days;
* cache keys carry the symbol's scenario generation, so a changed timeline is never served
  from stale entries (they age out of the LRUs).

Memory is bounded by the LRU capacities (see SeriesStore), whatever the uptime.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from app.exchange.simulator.series import MinuteArrays, TradeBatch, generate, minute_arrays
from app.exchange.simulator.timeline import Timeline
from app.exchange.simulator.universe import SymbolSpec

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
_BATCH_MINUTES = 7 * 1440
_INT64_SAFE = 2**62


class Agg(NamedTuple):
    """An exact aggregate of consecutive trades."""

    open: int
    high: int
    low: int
    close: int
    volume: int
    quote: int
    count: int


def merge(a: Agg | None, b: Agg | None) -> Agg | None:
    """a then b (b later in time)."""
    if a is None:
        return b
    if b is None:
        return a
    return Agg(
        a.open,
        max(a.high, b.high),
        min(a.low, b.low),
        b.close,
        a.volume + b.volume,
        a.quote + b.quote,
        a.count + b.count,
    )


def merge_all(parts: Iterable[Agg | None]) -> Agg | None:
    result: Agg | None = None
    for part in parts:
        result = merge(result, part)
    return result


class LRU:
    """A thread-safe least-recently-used mapping with a fixed capacity."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


def _sum(values: np.ndarray) -> int:
    """Exact sum as a Python int (object arrays hold Python ints already)."""
    if values.dtype == object:
        return int(sum(values.tolist()))
    if len(values) and int(np.abs(values).max()) * len(values) >= _INT64_SAFE:
        return int(sum(values.tolist()))
    return int(values.sum())


def _group_sum(values: np.ndarray, starts: np.ndarray, size: int) -> list[int]:
    if values.dtype != object and int(np.abs(values).max(initial=0)) * size >= _INT64_SAFE:
        values = values.astype(object)
    return [int(x) for x in np.add.reduceat(values, starts).tolist()]


def _group_aggs(m: MinuteArrays, size: int) -> list[Agg]:
    """Aggregates of consecutive groups of `size` minutes."""
    n = len(m.open) // size
    starts = np.arange(0, n * size, size)
    columns = (
        m.open[starts].tolist(),
        np.maximum.reduceat(m.high[: n * size], starts).tolist(),
        np.minimum.reduceat(m.low[: n * size], starts).tolist(),
        m.close[starts + size - 1].tolist(),
        _group_sum(m.volume[: n * size], starts, size),
        _group_sum(m.quote[: n * size], starts, size),
        np.add.reduceat(m.count[: n * size], starts).tolist(),
    )
    return [Agg(*row) for row in zip(*columns, strict=True)]


@dataclass(slots=True)
class MinuteBlock:
    """The 60 minute aggregates of one hour."""

    minutes: MinuteArrays
    agg: Agg
    _prefix: tuple[np.ndarray, ...] | None = None
    _suffix: tuple[np.ndarray, ...] | None = None

    def slice(self, i: int, j: int) -> Agg:
        """Minutes [i, j) of the hour."""
        if i == 0:
            return self.prefix(j)
        if j == len(self.minutes.open):
            return self.suffix(i)
        m = self.minutes
        return Agg(
            int(m.open[i]),
            int(m.high[i:j].max()),
            int(m.low[i:j].min()),
            int(m.close[j - 1]),
            _sum(m.volume[i:j]),
            _sum(m.quote[i:j]),
            int(m.count[i:j].sum()),
        )

    def _cumulative_columns(self, reverse: bool) -> tuple[np.ndarray, ...]:
        m = self.minutes
        step = -1 if reverse else 1
        quote = m.quote[::step]
        if quote.dtype != object and int(np.abs(quote).max(initial=0)) * 64 >= _INT64_SAFE:
            quote = quote.astype(object)
        columns = (
            np.maximum.accumulate(m.high[::step]),
            np.minimum.accumulate(m.low[::step]),
            np.cumsum(m.volume[::step]),
            np.cumsum(quote),
            np.cumsum(m.count[::step]),
        )
        return tuple(c[::step] for c in columns)

    def prefix(self, j: int) -> Agg:
        """Minutes [0, j), j >= 1."""
        if self._prefix is None:
            self._prefix = self._cumulative_columns(reverse=False)
        hi, lo, vol, quote, count = self._prefix
        k = j - 1
        m = self.minutes
        return Agg(
            int(m.open[0]),
            int(hi[k]),
            int(lo[k]),
            int(m.close[k]),
            int(vol[k]),
            int(quote[k]),
            int(count[k]),
        )

    def suffix(self, i: int) -> Agg:
        """Minutes [i, 60), i <= 59."""
        if self._suffix is None:
            self._suffix = self._cumulative_columns(reverse=True)
        hi, lo, vol, quote, count = self._suffix
        m = self.minutes
        return Agg(
            int(m.open[i]),
            int(hi[i]),
            int(lo[i]),
            int(m.close[-1]),
            int(vol[i]),
            int(quote[i]),
            int(count[i]),
        )

    def close_of(self, i: int) -> int:
        return int(self.minutes.close[i])


class LastTrade(NamedTuple):
    t: int
    price: int
    qty: int
    buy: bool
    spread: int


@dataclass(slots=True)
class TradeBlock:
    """Every trade of one hour (future minutes included: callers cut at now)."""

    batch: TradeBatch
    _prefix: dict[int, tuple[np.ndarray, ...]] = field(default_factory=dict)
    _notional: np.ndarray | None = None

    def notional(self) -> np.ndarray:
        if self._notional is None:
            self._notional = self.batch.notional()
        return self._notional

    def upto(self, t_ms: int) -> int:
        """Index after the last trade at or before t_ms."""
        return int(np.searchsorted(self.batch.t, t_ms, side="right"))

    def last_before(self, t_ms: int) -> LastTrade | None:
        k = self.upto(t_ms)
        return self.trade(k - 1) if k else None

    def trade(self, i: int) -> LastTrade:
        b = self.batch
        return LastTrade(
            int(b.t[i]), int(b.price[i]), int(b.qty[i]), bool(b.buy[i]), int(b.spread[i])
        )

    def partial_minute(self, j: int, now: int) -> Agg | None:
        """Trades of the block's minute j at or before now."""
        b = self.batch
        s, e = int(b.offsets[j]), int(b.offsets[j + 1])
        k = int(np.searchsorted(b.t[s:e], now, side="right"))
        if k == 0:
            return None
        prefix = self._prefix.get(j)
        if prefix is None:
            price, qty = b.price[s:e], b.qty[s:e]
            prefix = (
                np.maximum.accumulate(price),
                np.minimum.accumulate(price),
                np.cumsum(qty),
                np.cumsum(self.notional()[s:e]),
            )
            self._prefix[j] = prefix
        high, low, volume, quote = prefix
        return Agg(
            int(b.price[s]),
            int(high[k - 1]),
            int(low[k - 1]),
            int(b.price[s + k - 1]),
            int(volume[k - 1]),
            int(quote[k - 1]),
            k,
        )


class SeriesStore:
    """The bounded caches shared by every symbol of a market."""

    def __init__(self, n_symbols: int) -> None:
        symbols = n_symbols + 16
        self.trade_blocks = LRU(2 * symbols + 256)
        self.minute_blocks = LRU(4 * symbols + 1024)
        self.hour_aggs = LRU(150_000)
        self.day_aggs = LRU(60_000)


@dataclass(frozen=True, slots=True)
class SymbolSeries:
    """One symbol's trade series under one scenario timeline, read through the caches."""

    spec: SymbolSpec
    timeline: Timeline
    generation: int
    store: SeriesStore

    def _key(self, index: int) -> tuple[str, int, int]:
        return (self.spec.symbol, self.generation, index)

    def listed(self, hour: int) -> bool:
        return hour * HOUR_MS >= self.spec.listed_at_ms

    # ---- cached pieces ---------------------------------------------------------------------

    def fill(
        self,
        hours: Iterable[int],
        keep_minutes: Iterable[int] = (),
        trades_hour: int | None = None,
    ) -> None:
        """Compute what the caches lack for `hours` in one numpy pass per run of consecutive
        hours: every hour's aggregate, the minute blocks of keep_minutes, the trade block of
        trades_hour."""
        store, keep = self.store, set(keep_minutes)
        missing = []
        for h in set(hours) | keep | ({trades_hour} if trades_hour is not None else set()):
            if not self.listed(h):
                continue
            key = self._key(h)
            if (
                (h in keep and key not in store.minute_blocks)
                or (h == trades_hour and key not in store.trade_blocks)
                or (key not in store.hour_aggs and key not in store.minute_blocks)
            ):
                missing.append(h)
        for h0, count in _runs(missing, 24 * 7):
            batch = generate(self.spec, self.timeline, h0 * 60, count * 60)
            minutes = minute_arrays(batch)
            for i, agg in enumerate(_group_aggs(minutes, 60)):
                key = self._key(h0 + i)
                store.hour_aggs.put(key, agg)
                if h0 + i in keep:
                    part = MinuteArrays(
                        *(a[i * 60 : (i + 1) * 60].copy() for a in minutes_fields(minutes))
                    )
                    store.minute_blocks.put(key, MinuteBlock(part, agg))
                if h0 + i == trades_hour:
                    store.trade_blocks.put(key, TradeBlock(_hour_of(batch, i)))

    def trade_block(self, hour: int) -> TradeBlock | None:
        if not self.listed(hour):
            return None
        key = self._key(hour)
        block = self.store.trade_blocks.get(key)
        if block is None:
            self.fill([hour], [hour], hour)
            block = self.store.trade_blocks.get(key)
        return block

    def minute_block(self, hour: int) -> MinuteBlock | None:
        if not self.listed(hour):
            return None
        key = self._key(hour)
        block = self.store.minute_blocks.get(key)
        if block is None:
            self.fill([hour], [hour])
            block = self.store.minute_blocks.get(key)
        return block

    def fill_minute_blocks(self, hours: Iterable[int]) -> None:
        """Compute the minute blocks of the listed hours not cached yet, in batches."""
        hours = list(hours)
        self.fill(hours, hours)

    def hour_agg(self, hour: int) -> Agg | None:
        if not self.listed(hour):
            return None
        key = self._key(hour)
        block = self.store.minute_blocks.get(key)
        if block is not None:
            return block.agg
        agg = self.store.hour_aggs.get(key)
        if agg is None:
            self.fill([hour])
            agg = self.store.hour_aggs.get(key)
        return agg

    def day_agg(self, day: int) -> Agg | None:
        if day * DAY_MS < self.spec.listed_at_ms:
            return None
        agg = self.store.day_aggs.get(self._key(day))
        if agg is None:
            self.ensure_days([day])
            agg = self.store.day_aggs.get(self._key(day))
        return agg

    def ensure_hours(self, hours: Iterable[int]) -> None:
        self.fill(hours)

    def ensure_days(self, days: Iterable[int]) -> None:
        missing = [
            d
            for d in days
            if d * DAY_MS >= self.spec.listed_at_ms and self._key(d) not in self.store.day_aggs
        ]
        for d0, count in _runs(missing, 7):
            minutes = minute_arrays(generate(self.spec, self.timeline, d0 * 1440, count * 1440))
            for i, agg in enumerate(_group_aggs(minutes, 1440)):
                self.store.day_aggs.put(self._key(d0 + i), agg)

    def closed(self, a: int, b: int) -> Agg | None:
        """Every trade in [a, b), both minute-aligned and b no later than the current minute."""
        a = max(a, self.spec.listed_at_ms)
        pieces: list[tuple[str, int, int, int]] = []
        t = a
        while t < b:
            if t % DAY_MS == 0 and t + DAY_MS <= b:
                pieces.append(("d", t // DAY_MS, 0, 0))
                t += DAY_MS
            elif t % HOUR_MS == 0 and t + HOUR_MS <= b:
                pieces.append(("h", t // HOUR_MS, 0, 0))
                t += HOUR_MS
            else:
                hour = t // HOUR_MS
                end = min(b, (hour + 1) * HOUR_MS)
                start_i = (t - hour * HOUR_MS) // MINUTE_MS
                pieces.append(("m", hour, start_i, (end - hour * HOUR_MS) // MINUTE_MS))
                t = end
        self.ensure_days(p[1] for p in pieces if p[0] == "d")
        minute_hours = [p[1] for p in pieces if p[0] == "m"]
        self.fill([p[1] for p in pieces if p[0] == "h"], minute_hours)
        return merge_all(self._piece(p) for p in pieces)

    def _piece(self, piece: tuple[str, int, int, int]) -> Agg | None:
        kind, index, i, j = piece
        if kind == "d":
            return self.day_agg(index)
        if kind == "h":
            return self.hour_agg(index)
        block = self.minute_block(index)
        return block.slice(i, j) if block is not None else None

    def partial(self, now: int) -> Agg | None:
        """The trades of now's minute at or before now."""
        minute = now // MINUTE_MS
        block = self.trade_block(minute // 60)
        return block.partial_minute(minute % 60, now) if block is not None else None

    def window(self, a: int, b: int, now: int) -> Agg | None:
        """Every trade in [a, b) at or before now (a, b minute-aligned)."""
        current = now // MINUTE_MS * MINUTE_MS
        closed = self.closed(a, min(b, current)) if a < min(b, current) else None
        if a <= current < b:
            return merge(closed, self.partial(now))
        return closed

    def last_trade(self, t_ms: int) -> LastTrade | None:
        """The last trade at or before t_ms (None before the listing)."""
        hour = t_ms // HOUR_MS
        block = self.trade_block(hour)
        if block is None:
            return None
        found = block.last_before(t_ms)
        if found is None:  # only before the hour's first opening print
            previous = self.trade_block(hour - 1)
            return previous.trade(len(previous.batch.t) - 1) if previous is not None else None
        return found


def minutes_fields(m: MinuteArrays) -> tuple[np.ndarray, ...]:
    return (m.open, m.high, m.low, m.close, m.volume, m.quote, m.count)


def _hour_of(batch: TradeBatch, i: int) -> TradeBatch:
    """Hour i (minutes 60 i .. 60 i + 59) of a batch, as a batch of its own."""
    offsets = batch.offsets[i * 60 : (i + 1) * 60 + 1]
    lo, hi = int(offsets[0]), int(offsets[-1])
    return TradeBatch(
        batch.m0 + i * 60,
        60,
        batch.t[lo:hi].copy(),
        batch.price[lo:hi].copy(),
        batch.qty[lo:hi].copy(),
        batch.buy[lo:hi].copy(),
        batch.spread[lo:hi].copy(),
        offsets - lo,
    )


def _runs(indices: Iterable[int], max_len: int) -> list[tuple[int, int]]:
    """Sorted distinct indices as (start, length) runs of consecutive values, each <= max_len."""
    runs: list[tuple[int, int]] = []
    for i in sorted(set(indices)):
        if runs and runs[-1][0] + runs[-1][1] == i and runs[-1][1] < max_len:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs
