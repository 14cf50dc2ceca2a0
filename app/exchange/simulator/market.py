"""A deterministic simulated MEXC spot market: no I/O and no wall clock.

Every answer is a pure function of (n_symbols, seed, scenario timelines, arguments, now_ms):
two instances built alike answer identically, in any process. Answers use MEXC's spot v3
JSON shapes (prices and quantities as exact decimal strings, times as int milliseconds).

One trade series per symbol (series.py) is the source of everything: every candle of every
interval is the exact aggregate of its trades (candles.py, klines.py), the tickers aggregate
the last 1440 one-minute candles, the last price is the last trade, and the book is the quote
that trade left (book.py). Scenarios (scenarios.py, timeline.py) change a symbol from a moment
on and keep earlier candles as they were; clearing them restores the seed model, past included.

Module map: universe (symbols and their parameters), series (the trades), candles (exact
aggregates and their bounded caches), klines (calendar), book (the order book), tape (trade
lists), answers (JSON shapes), timeline (scenario segments).
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

from app.exchange.simulator import answers, book, klines, tape
from app.exchange.simulator.answers import (
    InvalidIntervalError,
    InvalidSymbolError,
    SimulatorError,
    units_str,
)
from app.exchange.simulator.candles import (
    HOUR_MS,
    MINUTE_MS,
    Agg,
    SeriesStore,
    SymbolSeries,
    merge,
    merge_all,
)
from app.exchange.simulator.scenarios import Scenario, scenario_from_fields
from app.exchange.simulator.timeline import Timeline
from app.exchange.simulator.universe import DAY_MS, SymbolSpec, build_universe

__all__ = [
    "DAY_MS",
    "InvalidIntervalError",
    "InvalidSymbolError",
    "SimulatedMarket",
    "SimulatorError",
]

KLINE_DEFAULT_LIMIT = klines.KLINE_DEFAULT_LIMIT
KLINE_MAX_LIMIT = klines.KLINE_MAX_LIMIT
DEPTH_DEFAULT_LIMIT = 100
DEPTH_MAX_LIMIT = 5000
TRADES_DEFAULT_LIMIT = 500
TRADES_MAX_LIMIT = 1000
WINDOW_MINUTES = 1440
AVG_PRICE_MINUTES = 5
_EMPTY = Timeline()
# (generation, minute), closed part, close before the window, (generation, hours), hours part
_WindowMemo = tuple[
    tuple[int, int], Agg | None, int | None, tuple[int, tuple[int, int]], Agg | None
]


def _clamp(limit: int | None, default: int, maximum: int) -> int:
    return default if limit is None else max(1, min(limit, maximum))


class SimulatedMarket:
    """n_symbols USDT pairs plus a few non-USDT pairs, all a pure function of `seed`."""

    def __init__(self, n_symbols: int, seed: int) -> None:
        specs = build_universe(n_symbols, seed)
        self.n_symbols = n_symbols
        self.seed = seed
        self._specs: dict[str, SymbolSpec] = {s.symbol: s for s in specs}
        self._order: list[str] = [s.symbol for s in specs]
        # symbol -> (generation, timeline). Copy-on-write: writers (under the lock) replace
        # the dict, so readers need no lock. A new generation keys new cache entries.
        self._timelines: dict[str, tuple[int, Timeline]] = {}
        self._generation = 0
        self._scenario_lock = threading.Lock()
        self.store = SeriesStore(len(specs))
        self._window_memo: dict[str, _WindowMemo] = {}
        self._day_memo: dict[tuple[str, int], tuple[int, tuple[int, int] | None]] = {}

    # ---- symbol universe -------------------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        """Every symbol, USDT pairs first (in listing order), then the extra pairs."""
        return list(self._order)

    @property
    def usdt_symbols(self) -> list[str]:
        return [s for s in self._order if self._specs[s].quote_asset == "USDT"]

    def has_symbol(self, symbol: str) -> bool:
        return symbol in self._specs

    def spec(self, symbol: str) -> SymbolSpec:
        try:
            return self._specs[symbol]
        except KeyError:
            raise InvalidSymbolError(symbol) from None

    def default_symbols(self) -> list[str]:
        """Symbols tradable through the API (status "1" and spot trading allowed)."""
        return [
            s for s in self._order if self._specs[s].status == "1" and self._specs[s].spot_allowed
        ]

    def series(self, symbol: str) -> SymbolSeries:
        """The symbol's trade series under its current scenario timeline."""
        spec = self.spec(symbol)
        generation, timeline = self._timelines.get(symbol, (0, _EMPTY))
        return SymbolSeries(spec, timeline, generation, self.store)

    # ---- scenarios -------------------------------------------------------------------------

    def set_scenario(self, symbol: str, *, started_at_ms: int, **fields: Any) -> Scenario:
        """Apply overrides (price_factor, spread_factor, depth_factor, trend_pct_per_min) to
        `symbol` from started_at_ms on; ValueError names an unknown symbol or a bad field."""
        scenario = scenario_from_fields(symbol, started_at_ms=started_at_ms, **fields)
        return self.apply_scenario(scenario, started_at_ms)

    def apply_scenario(self, scenario: Scenario, started_at_ms: int) -> Scenario:
        """Add `scenario` to its symbol's timeline (stamped with started_at_ms unless it has a
        start); scenarios of that symbol starting at or after it are dropped."""
        if scenario.symbol not in self._specs:
            raise ValueError(f"unknown symbol {scenario.symbol!r}")
        scenario = scenario.stamped(started_at_ms)
        with self._scenario_lock:
            _, timeline = self._timelines.get(scenario.symbol, (0, _EMPTY))
            self._generation += 1
            timelines = dict(self._timelines)
            timelines[scenario.symbol] = (self._generation, timeline.with_scenario(scenario))
            self._timelines = timelines
        return scenario

    def clear_scenarios(self, symbol: str | None = None) -> int:
        """Remove every scenario (or one symbol's): the symbol is the seed model again, past
        candles included. Returns the number of symbols cleared."""
        with self._scenario_lock:
            if symbol is None:
                n = len(self._timelines)
                self._timelines = {}
                return n
            if symbol not in self._timelines:
                return 0
            self._timelines = {k: v for k, v in self._timelines.items() if k != symbol}
            return 1

    def scenario(self, symbol: str) -> Scenario | None:
        """The latest scenario set for symbol (possibly starting in the future), or None."""
        entry = self._timelines.get(symbol)
        return entry[1].segments[-1].scenario if entry else None

    def scenarios(self) -> list[Scenario]:
        """The latest scenario of every symbol that has one, in listing order."""
        timelines = self._timelines
        return [timelines[s][1].segments[-1].scenario for s in self._order if s in timelines]

    # ---- numbers ---------------------------------------------------------------------------

    def window_24h(self, symbol: str, now_ms: int) -> tuple[Agg | None, int | None]:
        """(aggregate of the last 1440 one-minute candles up to now, close before them).

        The closed part is memoised per symbol and minute; it is the tail of the first hour's
        minutes, the full hours in between (memoised per hour) and the head of the current
        hour's minutes, so a new minute costs two lookups."""
        series = self.series(symbol)
        current = now_ms // MINUTE_MS * MINUTE_MS
        memo = self._window_memo.get(symbol)
        if memo is None or memo[0] != (series.generation, current):
            memo = self._closed_window(series, current, memo)
            self._window_memo[symbol] = memo
        return merge(memo[1], series.partial(now_ms)), memo[2]

    def _closed_window(
        self, series: SymbolSeries, current: int, memo: _WindowMemo | None
    ) -> _WindowMemo:
        start = current - (WINDOW_MINUTES - 1) * MINUTE_MS
        first, last = start // HOUR_MS, current // HOUR_MS
        series.fill(range(first, last + 1), (first, last), last)
        middle_key = (first + 1, last - 1)
        if memo is not None and memo[3] == (series.generation, middle_key):
            middle = memo[4]
        else:
            middle = merge_all(series.hour_agg(h) for h in range(first + 1, last))
        head_block, tail_block = series.minute_block(first), series.minute_block(last)
        head = head_block.suffix((start - first * HOUR_MS) // MINUTE_MS) if head_block else None
        j = (current - last * HOUR_MS) // MINUTE_MS
        tail = tail_block.prefix(j) if tail_block and j else None
        before = start - MINUTE_MS
        before_block = series.minute_block(before // HOUR_MS)
        prev_close = before_block.close_of(before // MINUTE_MS % 60) if before_block else None
        closed = merge(merge(head, middle), tail)
        return (
            (series.generation, current),
            closed,
            prev_close,
            (series.generation, middle_key),
            middle,
        )

    def prefetch(self, symbol: str, now_ms: int) -> None:
        """Compute ahead what this symbol's tickers need now and in the coming hour: the 24h
        window and the hour blocks it moves into next (a server calls this in the background
        so no request pays for an hour boundary)."""
        self.window_24h(symbol, now_ms)
        series = self.series(symbol)
        current = now_ms // MINUTE_MS * MINUTE_MS
        first = (current - (WINDOW_MINUTES - 1) * MINUTE_MS) // HOUR_MS
        last = current // HOUR_MS
        series.fill((first + 1, last + 1), (first + 1, last + 1), last + 1)

    def day_reference(self, symbol: str, start_ms: int, now_ms: int) -> tuple[int, int] | None:
        """(open of the minute starting at start_ms, close of the minute before it) in ticks;
        None before the listing. Both are final once now_ms >= start_ms, so they are kept
        (per symbol and day start) for the miniTicker streams."""
        series = self.series(symbol)
        key = (symbol, start_ms)
        found = self._day_memo.get(key)
        if found is not None and found[0] == series.generation:
            return found[1]
        first = series.window(start_ms, start_ms + MINUTE_MS, now_ms)
        before = series.window(start_ms - MINUTE_MS, start_ms, now_ms)
        value = None if first is None else (first.open, before.close if before else first.open)
        if now_ms >= start_ms:
            if len(self._day_memo) > 8 * len(self._order):
                self._day_memo.clear()
            self._day_memo[key] = (series.generation, value)
        return value

    def price(self, symbol: str, now_ms: int) -> Decimal:
        """The last traded price at now_ms."""
        last = self.series(symbol).last_trade(now_ms)
        return Decimal(units_str(last.price if last else 0, self.spec(symbol).quote_prec))

    def top(self, symbol: str, now_ms: int) -> book.Top | None:
        return book.top(self.series(symbol), now_ms)

    # ---- endpoints -------------------------------------------------------------------------

    def exchange_info(self, symbols: list[str] | None, now_ms: int) -> dict[str, Any]:
        names = self._order if symbols is None else symbols
        return {
            "timezone": "CST",
            "serverTime": now_ms,
            "rateLimits": [],
            "exchangeFilters": [],
            "symbols": [answers.symbol_info(self.spec(s)) for s in names],
        }

    def ticker_24h(self, symbol: str, now_ms: int) -> dict[str, Any]:
        window, prev_close = self.window_24h(symbol, now_ms)
        return answers.ticker_24h(
            self.spec(symbol), window, prev_close, self.top(symbol, now_ms), now_ms
        )

    def ticker_price(self, symbol: str, now_ms: int) -> dict[str, Any]:
        return {"symbol": symbol, "price": format(self.price(symbol, now_ms), "f")}

    def avg_price(self, symbol: str, now_ms: int) -> dict[str, Any]:
        """Volume-weighted average price of the last 5 one-minute candles."""
        spec = self.spec(symbol)
        current = now_ms // MINUTE_MS * MINUTE_MS
        agg = self.series(symbol).window(current - 4 * MINUTE_MS, current + MINUTE_MS, now_ms)
        if agg is None or agg.volume == 0:
            return {"mins": AVG_PRICE_MINUTES, "price": units_str(0, spec.quote_prec + 2)}
        ticks = (Decimal(agg.quote) / Decimal(agg.volume)).quantize(Decimal("0.01"))
        return {
            "mins": AVG_PRICE_MINUTES,
            "price": units_str(int(ticks * 100), spec.quote_prec + 2),
        }

    def book_ticker(self, symbol: str, now_ms: int) -> dict[str, Any]:
        return answers.book_ticker(self.spec(symbol), self.top(symbol, now_ms))

    def depth(self, symbol: str, limit: int | None, now_ms: int) -> dict[str, Any]:
        """Order book snapshot: `limit` levels a side (default 100, clamped to 1..5000)."""
        spec = self.spec(symbol)
        n = _clamp(limit, DEPTH_DEFAULT_LIMIT, DEPTH_MAX_LIMIT)
        series = self.series(symbol)
        found = book.levels(series, now_ms, n)
        if found is None:
            return answers.depth(spec, [], [], book.version(series, now_ms), now_ms)
        bids, asks, best = found
        return answers.depth(spec, bids, asks, best.version, now_ms)

    def trades(self, symbol: str, limit: int | None, now_ms: int) -> list[dict[str, Any]]:
        """Recent trades, oldest first (default 500, clamped to 1..1000)."""
        spec = self.spec(symbol)
        n = _clamp(limit, TRADES_DEFAULT_LIMIT, TRADES_MAX_LIMIT)
        return [answers.trade(spec, t) for t in tape.recent(self.series(symbol), now_ms, n)]

    def agg_trades(
        self,
        symbol: str,
        start_ms: int | None,
        end_ms: int | None,
        limit: int | None,
        now_ms: int,
    ) -> list[dict[str, Any]]:
        """Aggregate trades, oldest first (default 500, clamped to 1..1000). With startTime
        and/or endTime (both inclusive): the trades in that window, at most one hour of it."""
        spec = self.spec(symbol)
        n = _clamp(limit, TRADES_DEFAULT_LIMIT, TRADES_MAX_LIMIT)
        series = self.series(symbol)
        if start_ms is None and end_ms is None:
            rows = tape.recent(series, now_ms, n)
        elif start_ms is None:
            assert end_ms is not None
            rows = tape.recent(series, min(end_ms, now_ms), n)
        else:
            end = min(now_ms, start_ms + 3_600_000 if end_ms is None else end_ms)
            rows = tape.between(series, start_ms, min(end, start_ms + 3_600_000), n)
        return [answers.agg_trade(spec, t) for t in rows]

    def klines(
        self,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int | None = None,
        *,
        now_ms: int,
    ) -> list[list[Any]]:
        """8-field MEXC kline rows, oldest first.

        With start_ms: candles with openTime >= start_ms; with end_ms: openTime < end_ms
        (exclusive); with neither: the latest `limit` candles, the last one still in progress.
        Never a candle opening after now_ms or before the listing. limit defaults to 500 and
        is clamped to 1..500 (what MEXC serves).
        """
        spec = self.spec(symbol)
        if interval not in klines.REST_INTERVALS:
            raise InvalidIntervalError(interval)
        n = _clamp(limit, KLINE_DEFAULT_LIMIT, KLINE_MAX_LIMIT)
        opens = klines.candle_opens(interval, start_ms, end_ms, n, now_ms, spec.listed_at_ms)
        rows = klines.candles(self.series(symbol), interval, opens, now_ms)
        return [answers.kline_row(spec, o, klines.next_open(o, interval), agg) for o, agg in rows]
