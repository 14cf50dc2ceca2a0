"""One trade series behind every answer: candles of every interval, trades, tickers and the book
agree with each other exactly, with and without scenarios."""

from __future__ import annotations

import itertools
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.exchange.simulator.market import SimulatedMarket

pytestmark = pytest.mark.unit

MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
N_SYMBOLS = 40
SEED = 3
PLAIN = SimulatedMarket(N_SYMBOLS, SEED)  # never given a scenario; its caches warm up
SPAN_MINUTES = {"5m": 5, "15m": 15, "30m": 30, "60m": 60, "4h": 240, "1d": 1440}

# any moment from 2025-01-01 to 2026-06-30, every symbol (majors, mid and small caps)
moments = st.integers(1_735_689_600_000, 1_782_777_600_000)
symbols = st.sampled_from(PLAIN.symbols)
scenario_fields = st.fixed_dictionaries(
    {},
    optional={
        "price_factor": st.sampled_from(["0.7", "0.97", "1.04", "1.5"]),
        "spread_factor": st.sampled_from(["1", "3", "50"]),
        "depth_factor": st.sampled_from(["0.001", "1", "20"]),
        "trend_pct_per_min": st.sampled_from(["-2", "0", "0.5"]),
    },
)
examples = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def market_for(symbol: str, now: int, fields: dict[str, str], start_before: int) -> SimulatedMarket:
    """PLAIN, or a fresh market where `symbol` got a scenario start_before ms before now."""
    if not fields:
        return PLAIN
    market = SimulatedMarket(N_SYMBOLS, SEED)
    market.set_scenario(symbol, started_at_ms=now - start_before, **fields)
    return market


def minutes_between(m: SimulatedMarket, symbol: str, start: int, end: int, now: int) -> list:
    """Every 1m candle opening in [start, end), fetched 500 at a time as a client would."""
    rows: list[list[Any]] = []
    while start < end:
        page = m.klines(symbol, "1m", start, end, 500, now_ms=now)
        if not page:
            break
        rows.extend(page)
        start = page[-1][0] + MINUTE
    return rows


def aggregate(rows: list[list[Any]]) -> dict[str, Decimal]:
    return {
        "open": Decimal(rows[0][1]),
        "high": max(Decimal(r[2]) for r in rows),
        "low": min(Decimal(r[3]) for r in rows),
        "close": Decimal(rows[-1][4]),
        "volume": sum((Decimal(r[5]) for r in rows), Decimal(0)),
        "quote": sum((Decimal(r[7]) for r in rows), Decimal(0)),
    }


def as_numbers(row: list[Any]) -> dict[str, Decimal]:
    keys = ("open", "high", "low", "close", "volume")
    return {k: Decimal(v) for k, v in zip(keys, row[1:6], strict=True)} | {"quote": Decimal(row[7])}


@examples
@given(
    symbol=symbols,
    now=moments,
    interval=st.sampled_from(list(SPAN_MINUTES)),
    back=st.integers(0, 3),
    fields=scenario_fields,
    start_before=st.integers(0, 6 * HOUR),
)
def test_every_candle_is_the_aggregate_of_its_minutes(
    symbol: str, now: int, interval: str, back: int, fields: dict, start_before: int
) -> None:
    m = market_for(symbol, now, fields, start_before)
    rows = m.klines(symbol, interval, limit=back + 1, now_ms=now)
    candle = rows[0]  # `back` candles before the one in progress
    minutes = minutes_between(m, symbol, candle[0], candle[6], now)
    assert len(minutes) == min(SPAN_MINUTES[interval], (now - candle[0]) // MINUTE + 1)
    assert as_numbers(candle) == aggregate(minutes)
    assert all(r[6] == r[0] + MINUTE for r in minutes)


@settings(max_examples=6, deadline=None)
@given(symbol=symbols, now=moments)
def test_weeks_and_months_are_aggregates_of_days(symbol: str, now: int) -> None:
    for interval, days in (("1W", 7), ("1M", 31)):
        candle = PLAIN.klines(symbol, interval, limit=2, now_ms=now)[0]
        day_rows = PLAIN.klines(symbol, "1d", candle[0], candle[6], days, now_ms=now)
        assert as_numbers(candle) == aggregate(day_rows)


@examples
@given(symbol=symbols, now=moments, fields=scenario_fields, start_before=st.integers(0, HOUR))
def test_trades_are_the_minutes_candles(
    symbol: str, now: int, fields: dict, start_before: int
) -> None:
    m = market_for(symbol, now, fields, start_before)
    trades = m.trades(symbol, 1000, now)
    by_minute: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for t in trades:
        by_minute[t["time"] // MINUTE * MINUTE].append(t)
    complete = sorted(by_minute)[1:]  # the oldest minute may be cut by the limit
    assert complete, "a symbol trades at least once a minute"
    candles = {r[0]: r for r in minutes_between(m, symbol, complete[0], now + 1, now)}
    for minute in complete:
        rows, candle = by_minute[minute], as_numbers(candles[minute])
        prices = [Decimal(t["price"]) for t in rows]
        assert all(candle["low"] <= p <= candle["high"] for p in prices)
        assert (prices[0], prices[-1]) == (candle["open"], candle["close"])
        assert (max(prices), min(prices)) == (candle["high"], candle["low"])
        assert sum(Decimal(t["qty"]) for t in rows) == candle["volume"]
        assert sum(Decimal(t["quoteQty"]) for t in rows) == candle["quote"]
        assert all(Decimal(t["quoteQty"]) == Decimal(t["price"]) * Decimal(t["qty"]) for t in rows)
    times = [t["time"] for t in trades]
    assert times == sorted(times) and times[-1] <= now
    agg = m.agg_trades(symbol, None, None, 1000, now)
    assert [(a["T"], a["p"], a["q"], a["m"]) for a in agg] == [
        (t["time"], t["price"], t["qty"], t["isBuyerMaker"]) for t in trades
    ]


@examples
@given(symbol=symbols, now=moments, fields=scenario_fields, start_before=st.integers(0, DAY))
def test_the_24h_ticker_is_its_1440_minutes(
    symbol: str, now: int, fields: dict, start_before: int
) -> None:
    m = market_for(symbol, now, fields, start_before)
    ticker = m.ticker_24h(symbol, now)
    current = now // MINUTE * MINUTE
    minutes = minutes_between(m, symbol, current - 1439 * MINUTE, current + MINUTE, now)
    assert len(minutes) == 1440
    window = aggregate(minutes)
    assert Decimal(ticker["openPrice"]) == window["open"]
    assert Decimal(ticker["highPrice"]) == window["high"]
    assert Decimal(ticker["lowPrice"]) == window["low"]
    assert Decimal(ticker["lastPrice"]) == window["close"] == m.price(symbol, now)
    assert Decimal(ticker["volume"]) == window["volume"]
    assert Decimal(ticker["quoteVolume"]) == window["quote"]
    before = m.klines(symbol, "1m", limit=1, end_ms=current - 1439 * MINUTE, now_ms=now)
    assert ticker["prevClosePrice"] == before[0][4]
    assert ticker["lastPrice"] == m.ticker_price(symbol, now)["price"]


@examples
@given(symbol=symbols, now=moments, fields=scenario_fields, start_before=st.integers(0, HOUR))
def test_book_ticker_depth_and_last_trade_agree(
    symbol: str, now: int, fields: dict, start_before: int
) -> None:
    m = market_for(symbol, now, fields, start_before)
    book = m.book_ticker(symbol, now)
    depth = m.depth(symbol, 20, now)
    ticker = m.ticker_24h(symbol, now)
    top = [depth["bids"][0][0], depth["bids"][0][1], depth["asks"][0][0], depth["asks"][0][1]]
    assert [book[k] for k in ("bidPrice", "bidQty", "askPrice", "askQty")] == top
    assert [ticker[k] for k in ("bidPrice", "bidQty", "askPrice", "askQty")] == top
    bid, ask, last = Decimal(top[0]), Decimal(top[2]), m.price(symbol, now)
    assert 0 < bid <= last <= ask and bid < ask
    # every trade happens at the quote of its moment: a taker buy lifts the ask, a sell hits
    # the bid of the book as it was then
    trades = m.trades(symbol, 30, now)
    times = [t["time"] for t in trades]
    for trade in trades:
        if times.count(trade["time"]) > 1:
            continue  # the book of that millisecond is the one its last trade left
        then = m.book_ticker(symbol, trade["time"])
        assert trade["price"] == (then["bidPrice"] if trade["isBuyerMaker"] else then["askPrice"])
    for side, ordered in (("bids", -1), ("asks", 1)):
        prices = [Decimal(p) for p, _ in depth[side]]
        assert all(ordered * (b - a) > 0 for a, b in itertools.pairwise(prices))


def test_avg_price_is_the_volume_weighted_price_of_5_minutes() -> None:
    now = 1_760_000_012_345
    for symbol in PLAIN.symbols[:10]:
        current = now // MINUTE * MINUTE
        window = aggregate(PLAIN.klines(symbol, "1m", current - 4 * MINUTE, now_ms=now))
        avg = Decimal(PLAIN.avg_price(symbol, now)["price"])
        assert abs(avg - window["quote"] / window["volume"]) < Decimal(1).scaleb(
            -PLAIN.spec(symbol).quote_prec - 1
        )


def test_any_cache_path_gives_the_same_candles() -> None:
    """A day computed in one batch, hour by hour or minute by minute is the same day."""
    now = 1_750_000_000_000 + 3 * DAY
    day = now // DAY * DAY - 2 * DAY
    cold = SimulatedMarket(N_SYMBOLS, SEED)
    by_day = cold.klines("SOLUSDT", "1d", day, limit=1, now_ms=now)
    by_hour = aggregate(cold.klines("SOLUSDT", "60m", day, day + DAY, now_ms=now))
    by_minute = aggregate(
        minutes_between(SimulatedMarket(N_SYMBOLS, SEED), "SOLUSDT", day, day + DAY, now)
    )
    assert as_numbers(by_day[0]) == by_hour == by_minute
