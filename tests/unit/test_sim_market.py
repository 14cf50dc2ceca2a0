"""The simulated MEXC market model: determinism, shapes and invariants."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.domain.market import KLINE_INTERVALS
from app.exchange.simulator.market import (
    DAY_MS,
    InvalidIntervalError,
    InvalidSymbolError,
    SimulatedMarket,
)

pytestmark = pytest.mark.unit

NOW = 1_750_000_123_456  # 2025-06-15T15:08:43.456Z, a Sunday
HOUR_MS = 3_600_000
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # no exponent, no float noise

TICKER_FIELDS = {
    "symbol",
    "priceChange",
    "priceChangePercent",
    "prevClosePrice",
    "lastPrice",
    "bidPrice",
    "bidQty",
    "askPrice",
    "askQty",
    "openPrice",
    "highPrice",
    "lowPrice",
    "volume",
    "quoteVolume",
    "openTime",
    "closeTime",
    "count",
}
SYMBOL_FIELDS = {
    "symbol",
    "status",
    "baseAsset",
    "baseAssetPrecision",
    "quoteAsset",
    "quotePrecision",
    "quoteAssetPrecision",
    "baseCommissionPrecision",
    "quoteCommissionPrecision",
    "orderTypes",
    "isSpotTradingAllowed",
    "isMarginTradingAllowed",
    "quoteAmountPrecision",
    "baseSizePrecision",
    "permissions",
    "filters",
    "maxQuoteAmount",
    "makerCommission",
    "takerCommission",
    "quoteAmountPrecisionMarket",
    "maxQuoteAmountMarket",
    "fullName",
    "tradeSideType",
}


@pytest.fixture(scope="module")
def market() -> SimulatedMarket:
    return SimulatedMarket(50, 1)


def _decimals(s: str) -> int:
    return len(s.split(".")[1]) if "." in s else 0


def _snapshot(m: SimulatedMarket, now: int) -> str:
    data = {
        "info": m.exchange_info(None, now),
        "tickers": [m.ticker_24h(s, now) for s in m.symbols],
        "klines": m.klines("ETHUSDT", "15m", limit=50, now_ms=now),
        "depth": m.depth("SOLUSDT", 20, now),
        "trades": m.trades("BTCUSDT", 20, now),
        "avg": m.avg_price("BTCUSDT", now),
    }
    return json.dumps(data, sort_keys=True)


# ---- determinism ---------------------------------------------------------------------------


def test_same_seed_is_identical_and_other_seed_differs() -> None:
    a, b, c = SimulatedMarket(50, 1), SimulatedMarket(50, 1), SimulatedMarket(50, 2)
    assert _snapshot(a, NOW) == _snapshot(b, NOW)
    assert a.symbols == c.symbols
    assert a.ticker_24h("BTCUSDT", NOW)["lastPrice"] != c.ticker_24h("BTCUSDT", NOW)["lastPrice"]
    assert _snapshot(a, NOW) != _snapshot(c, NOW)


def test_identical_across_processes() -> None:
    code = (
        "import json, sys;"
        "from app.exchange.simulator.market import SimulatedMarket;"
        f"m = SimulatedMarket(60, 5); now = {NOW};"
        "sys.stdout.write(json.dumps([m.ticker_24h(s, now) for s in m.symbols]"
        " + [m.exchange_info(None, now)] + m.klines('PEPEUSDT', '1m', limit=30, now_ms=now)))"
    )
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
        )
        outputs.append(proc.stdout)
    m = SimulatedMarket(60, 5)
    local = json.dumps(
        [m.ticker_24h(s, NOW) for s in m.symbols]
        + [m.exchange_info(None, NOW)]
        + m.klines("PEPEUSDT", "1m", limit=30, now_ms=NOW)
    )
    assert outputs[0] == outputs[1] == local


# ---- symbol universe and exchangeInfo ------------------------------------------------------


@pytest.mark.parametrize("n", [1, 3, 10, 50, 400])
def test_symbol_universe(n: int) -> None:
    m = SimulatedMarket(n, 7)
    usdt = m.usdt_symbols
    assert len(usdt) == n
    assert len(set(m.symbols)) == len(m.symbols)
    assert usdt[: min(n, 3)] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"][: min(n, 3)]
    extras = [s for s in m.symbols if not s.endswith("USDT")]
    assert {"BTCUSDC", "ETHBTC"} <= set(extras)
    info = {s["symbol"]: s for s in m.exchange_info(None, NOW)["symbols"]}
    not_tradable = [
        s for s in usdt if not (info[s]["status"] == "1" and info[s]["isSpotTradingAllowed"])
    ]
    assert len(not_tradable) <= 0.1 * n
    if n >= 10:
        assert not_tradable
        assert "BTCUSDT" not in not_tradable
    assert set(m.default_symbols()) == set(m.symbols) - set(not_tradable)
    for sym in usdt[26:]:
        base = info[sym]["baseAsset"]
        assert base.isalpha() and base.isupper() and 3 <= len(base) <= 5


def test_non_online_kinds_appear_in_a_large_market() -> None:
    info = SimulatedMarket(300, 3).exchange_info(None, NOW)["symbols"]
    statuses = {s["status"] for s in info}
    assert statuses == {"1", "2", "3"}
    assert any(s["status"] == "1" and not s["isSpotTradingAllowed"] for s in info)


def test_exchange_info_fields(market: SimulatedMarket) -> None:
    info = market.exchange_info(None, NOW)
    assert {k: info[k] for k in ("timezone", "serverTime", "rateLimits", "exchangeFilters")} == {
        "timezone": "CST",
        "serverTime": NOW,
        "rateLimits": [],
        "exchangeFilters": [],
    }
    assert len(info["symbols"]) == len(market.symbols)
    for s in info["symbols"]:
        assert set(s) == SYMBOL_FIELDS
        assert s["symbol"] == s["baseAsset"] + s["quoteAsset"]
        for key in ("baseAssetPrecision", "quoteAssetPrecision", "quotePrecision"):
            assert isinstance(s[key], int) and 0 <= s[key] <= 12
        assert s["permissions"] == ["SPOT"] and s["filters"] == []
        assert Decimal(s["baseSizePrecision"]) == Decimal(1).scaleb(-s["baseAssetPrecision"])
        assert s["makerCommission"] == "0"
        assert Decimal(s["takerCommission"]) in (Decimal("0"), Decimal("0.0005"), Decimal("0.001"))
        if s["quoteAsset"] == "USDT":
            assert s["quoteAmountPrecision"] in ("1", "5")
    btc = market.exchange_info(["BTCUSDT"], NOW)["symbols"]
    assert [s["symbol"] for s in btc] == ["BTCUSDT"]
    with pytest.raises(InvalidSymbolError):
        market.exchange_info(["BTCUSDT", "NOPEUSDT"], NOW)


def test_price_levels_span_magnitudes_with_six_significant_digits(market: SimulatedMarket) -> None:
    prices = {s: market.price(s, NOW) for s in market.symbols}
    assert prices["BTCUSDT"] > 10_000
    assert prices["PEPEUSDT"] < Decimal("0.001")
    assert max(prices.values()) / min(prices.values()) > 10**8
    for sym, price in prices.items():
        assert price > 0
        digits = len(price.as_tuple().digits)
        assert 5 <= digits <= 7, (sym, price)
        assert -price.as_tuple().exponent == market.spec(sym).quote_prec


# ---- prices and tickers --------------------------------------------------------------------


def test_prices_move_over_time(market: SimulatedMarket) -> None:
    symbols = market.usdt_symbols
    moved_1m = sum(market.price(s, NOW) != market.price(s, NOW + 60_000) for s in symbols)
    assert moved_1m >= 0.8 * len(symbols)
    week_later = [market.price(s, NOW + 7 * DAY_MS) / market.price(s, NOW) for s in symbols]
    assert max(week_later) > Decimal("1.02") and min(week_later) < Decimal("0.98")


@pytest.mark.parametrize("offset_days", [0, 3, 11, 40])
def test_some_symbols_move_a_lot_and_some_little(market: SimulatedMarket, offset_days: int) -> None:
    now = NOW + offset_days * DAY_MS
    changes = [
        abs(Decimal(market.ticker_24h(s, now)["priceChangePercent"])) for s in market.symbols
    ]
    assert max(changes) >= Decimal("0.05")
    assert min(changes) <= Decimal("0.01")
    assert max(changes) <= Decimal("0.5")


def test_ticker_fields_and_semantics(market: SimulatedMarket) -> None:
    for sym in market.symbols:
        t = market.ticker_24h(sym, NOW)
        assert set(t) == TICKER_FIELDS
        assert t["symbol"] == sym and t["count"] is None
        assert t["closeTime"] == NOW and t["openTime"] == NOW - DAY_MS
        assert all(
            isinstance(t[k], str) for k in TICKER_FIELDS - {"openTime", "closeTime", "count"}
        )
        last, open_ = Decimal(t["lastPrice"]), Decimal(t["openPrice"])
        assert last == market.price(sym, NOW)
        assert Decimal(t["priceChange"]) == last - open_
        expected = ((last - open_) / open_).quantize(Decimal("0.0001"))
        assert Decimal(t["priceChangePercent"]) == expected
        assert not t["priceChangePercent"].startswith("-0.0000")
        high, low = Decimal(t["highPrice"]), Decimal(t["lowPrice"])
        assert high >= max(last, open_) and 0 < low <= min(last, open_)
        bid, ask = Decimal(t["bidPrice"]), Decimal(t["askPrice"])
        assert bid <= last <= ask and bid < ask
        qp = market.spec(sym).quote_prec
        for key in ("lastPrice", "openPrice", "highPrice", "lowPrice", "bidPrice", "askPrice"):
            assert _decimals(t[key]) == qp
        volume, quote_volume = Decimal(t["volume"]), Decimal(t["quoteVolume"])
        assert volume > 0
        assert volume * low * Decimal("0.99") <= quote_volume <= volume * high * Decimal("1.01")
        numeric = [v for k, v in t.items() if k not in ("symbol", "openTime", "closeTime", "count")]
        assert all(_PLAIN_DECIMAL.fullmatch(v) for v in numeric), t


def test_ticker_price_and_avg_price(market: SimulatedMarket) -> None:
    assert market.ticker_price("ETHUSDT", NOW) == {
        "symbol": "ETHUSDT",
        "price": market.ticker_24h("ETHUSDT", NOW)["lastPrice"],
    }
    avg = market.avg_price("ETHUSDT", NOW)
    assert avg["mins"] == 5
    last = market.price("ETHUSDT", NOW)
    assert abs(Decimal(avg["price"]) / last - 1) < Decimal("0.05")


def test_all_tickers_of_a_2500_symbol_market() -> None:
    """Every symbol of a 2,500-symbol market has its 24h ticker, cold and warm (how fast is
    measured by `cdb bench`'s universe section, not here)."""
    m = SimulatedMarket(2500, 1)
    assert len(m.symbols) == 2500 + len([s for s in m.symbols if not s.endswith("USDT")])
    cold = [m.ticker_24h(s, NOW) for s in m.symbols]
    warm = [m.ticker_24h(s, NOW + 1000) for s in m.symbols]
    for tickers in (cold, warm):
        assert [t["symbol"] for t in tickers] == m.symbols
        assert all(Decimal(t["lastPrice"]) > 0 for t in tickers)
    json.dumps(warm)


# ---- order book ----------------------------------------------------------------------------


def test_depth_ordering_spread_and_limits(market: SimulatedMarket) -> None:
    for sym in ("BTCUSDT", "PEPEUSDT", "ETHBTC", market.usdt_symbols[-1]):
        d = market.depth(sym, None, NOW)
        # recorded MEXC answers carry both as strings
        assert set(d) == {"lastUpdateId", "bids", "asks", "timestamp"}
        assert d["timestamp"] == str(NOW) and d["lastUpdateId"].isdigit()
        bids = [(Decimal(p), Decimal(q)) for p, q in d["bids"]]
        asks = [(Decimal(p), Decimal(q)) for p, q in d["asks"]]
        assert len(bids) == len(asks) == 100
        assert all(a[0] > b[0] for a, b in itertools.pairwise(bids))
        assert all(a[0] < b[0] for a, b in itertools.pairwise(asks))
        assert all(q > 0 for _, q in bids + asks)
        best_bid, best_ask = bids[0][0], asks[0][0]
        assert best_bid < best_ask
        assert (best_ask - best_bid) / best_bid < Decimal("0.008")  # small caps: <= 80 bp
        book = market.book_ticker(sym, NOW)
        assert book == {
            "symbol": sym,
            "bidPrice": d["bids"][0][0],
            "bidQty": d["bids"][0][1],
            "askPrice": d["asks"][0][0],
            "askQty": d["asks"][0][1],
        }
    assert len(market.depth("BTCUSDT", 5, NOW)["bids"]) == 5
    big = market.depth("PEPEUSDT", 10_000, NOW)
    assert len(big["bids"]) == len(big["asks"]) == 5000
    assert Decimal(big["bids"][-1][0]) > 0
    later = int(market.depth("BTCUSDT", 5, NOW + 1000)["lastUpdateId"])
    assert later > int(market.depth("BTCUSDT", 5, NOW)["lastUpdateId"])


def test_trades(market: SimulatedMarket) -> None:
    trades = market.trades("SOLUSDT", None, NOW)
    assert len(trades) == 500
    assert len(market.trades("SOLUSDT", 5000, NOW)) == 1000
    times = [t["time"] for t in trades]
    assert times == sorted(times) and times[-1] <= NOW
    for t in trades:
        assert set(t) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}
        assert Decimal(t["quoteQty"]) == Decimal(t["price"]) * Decimal(t["qty"])
        assert Decimal(t["qty"]) > 0


# ---- klines --------------------------------------------------------------------------------


def _check_rows(rows: list[list], interval: str, m: SimulatedMarket, sym: str, now: int) -> None:
    qp = m.spec(sym).quote_prec
    for row in rows:
        assert len(row) == 8
        open_t, o, h, lo, c, v, close_t, qv = row
        assert isinstance(open_t, int) and isinstance(close_t, int)
        assert all(isinstance(x, str) for x in (o, h, lo, c, v, qv))
        assert all(_decimals(x) == qp for x in (o, h, lo, c))
        o_, h_, l_, c_ = map(Decimal, (o, h, lo, c))
        assert h_ >= max(o_, c_) and 0 < l_ <= min(o_, c_)
        assert Decimal(v) >= 0 and Decimal(qv) >= 0
        assert open_t <= now
    for prev, nxt in itertools.pairwise(rows):
        assert nxt[0] == prev[6]  # contiguous: MEXC's closeTime is the next openTime
    if interval != "1M":
        ms = KLINE_INTERVALS[interval] * 1000
        for row in rows:
            assert row[6] == row[0] + ms


def _candles_since_listing(m: SimulatedMarket, sym: str, interval: str, now: int) -> int:
    listed = datetime.fromtimestamp(m.spec(sym).listed_at_ms / 1000, UTC)
    today = datetime.fromtimestamp(now / 1000, UTC)
    if interval == "1M":
        return (today.year - listed.year) * 12 + today.month - listed.month + 1
    ms = KLINE_INTERVALS[interval] * 1000
    offset = 4 * DAY_MS if interval == "1W" else 0  # weeks open on Mondays
    first = (m.spec(sym).listed_at_ms - offset) // ms
    return (now - offset) // ms - first + 1


@pytest.mark.parametrize("interval", list(KLINE_INTERVALS))
def test_klines_latest_for_every_interval(market: SimulatedMarket, interval: str) -> None:
    rows = market.klines("BTCUSDT", interval, now_ms=NOW)
    expected = min(500, _candles_since_listing(market, "BTCUSDT", interval, NOW))
    assert len(rows) == expected  # 1W, 1M: no candle before the listing
    _check_rows(rows, interval, market, "BTCUSDT", NOW)
    last = rows[-1]
    assert last[0] <= NOW < last[6]  # the last candle is in progress
    assert last[4] == market.ticker_24h("BTCUSDT", NOW)["lastPrice"]
    assert len(market.klines("BTCUSDT", interval, limit=3, now_ms=NOW)) == 3
    assert market.klines("BTCUSDT", interval, limit=3, now_ms=NOW) == rows[-3:]
    clamped = market.klines("BTCUSDT", interval, limit=5000, now_ms=NOW)
    assert clamped == rows  # MEXC serves at most 500, whatever limit says


def test_kline_alignment_is_utc_and_calendar() -> None:
    m = SimulatedMarket(5, 1)
    for row in m.klines("ETHUSDT", "1d", limit=10, now_ms=NOW):
        assert row[0] % DAY_MS == 0
    for row in m.klines("ETHUSDT", "1W", limit=10, now_ms=NOW):
        assert datetime.fromtimestamp(row[0] / 1000, UTC).weekday() == 0
    months = m.klines("ETHUSDT", "1M", limit=14, now_ms=NOW)
    for row in months:
        opened = datetime.fromtimestamp(row[0] / 1000, UTC)
        closes = datetime.fromtimestamp(row[6] / 1000, UTC)
        assert (opened.day, opened.hour, opened.minute) == (1, 0, 0)
        assert closes.day == 1 and (closes.month - opened.month) % 12 == 1
    assert datetime.fromtimestamp(months[-1][0] / 1000, UTC).month == 6
    all_months = m.klines("ETHUSDT", "1M", limit=1000, now_ms=NOW)
    listed = datetime.fromtimestamp(m.spec("ETHUSDT").listed_at_ms / 1000, UTC)
    first = datetime.fromtimestamp(all_months[0][0] / 1000, UTC)
    assert (first.year, first.month, first.day) == (listed.year, listed.month, 1)
    assert len(all_months) == _candles_since_listing(m, "ETHUSDT", "1M", NOW)
    assert m.klines("ETHUSDT", "1d", 0, m.spec("ETHUSDT").listed_at_ms, now_ms=NOW) == []


@pytest.mark.parametrize("interval", ["1m", "60m", "1d", "1M"])
def test_klines_start_end_window(market: SimulatedMarket, interval: str) -> None:
    latest = market.klines("SOLUSDT", interval, limit=20, now_ms=NOW)
    start, end = latest[3][0], latest[10][0]
    rows = market.klines("SOLUSDT", interval, start, end, now_ms=NOW)
    assert [r[0] for r in rows] == [r[0] for r in latest[3:10]]  # endTime is exclusive
    assert rows == latest[3:10]
    # an unaligned startTime begins at the next candle
    assert market.klines("SOLUSDT", interval, start + 1, end, now_ms=NOW)[0][0] == latest[4][0]
    # an unaligned endTime includes the candle that opens before it
    assert market.klines("SOLUSDT", interval, start, end + 1, now_ms=NOW)[-1][0] == end
    # limit with startTime takes the first candles; with endTime only, the last ones
    assert market.klines("SOLUSDT", interval, start, end, 2, now_ms=NOW) == latest[3:5]
    assert market.klines("SOLUSDT", interval, None, end, 2, now_ms=NOW) == latest[8:10]
    # start only: runs up to now, the in-progress candle included
    assert market.klines("SOLUSDT", interval, start, now_ms=NOW) == latest[3:]
    # the future is empty
    assert market.klines("SOLUSDT", interval, NOW + 400 * DAY_MS, now_ms=NOW) == []
    _check_rows(rows, interval, market, "SOLUSDT", NOW)


def test_in_progress_candle_grows(market: SimulatedMarket) -> None:
    open_t = market.klines("BTCUSDT", "60m", limit=1, now_ms=NOW)[0][0]
    early = market.klines("BTCUSDT", "60m", limit=1, now_ms=open_t + 60_000)[0]
    late = market.klines("BTCUSDT", "60m", limit=1, now_ms=open_t + 50 * 60_000)[0]
    assert early[0] == late[0] == open_t and early[6] == late[6] == open_t + HOUR_MS
    assert early[1] == late[1]
    assert Decimal(late[5]) > Decimal(early[5])  # volume accumulates
    done = market.klines("BTCUSDT", "60m", limit=2, now_ms=open_t + HOUR_MS + 5)[0]
    assert done[0] == open_t
    assert Decimal(done[4]) == market.price("BTCUSDT", open_t + HOUR_MS - 1)  # the last trade
    # a closed candle never changes
    assert market.klines("BTCUSDT", "60m", open_t, limit=1, now_ms=open_t + 9 * HOUR_MS) == [done]


def test_invalid_symbol_and_interval(market: SimulatedMarket) -> None:
    with pytest.raises(InvalidSymbolError) as sym_err:
        market.ticker_24h("NOPEUSDT", NOW)
    assert sym_err.value.body() == {"msg": "Invalid symbol.", "code": -1121, "_extend": None}
    with pytest.raises(InvalidIntervalError) as int_err:
        market.klines("BTCUSDT", "1h", now_ms=NOW)
    assert int_err.value.body() == {"msg": "Invalid interval.", "code": -1121, "_extend": None}
    with pytest.raises(InvalidSymbolError):
        market.klines("btcusdt", "1m", now_ms=NOW)
    with pytest.raises(ValueError):
        SimulatedMarket(0, 1)


def test_caches_stay_bounded_over_days() -> None:
    """A long-running simulator keeps at most its LRU capacities, whatever the uptime."""
    m = SimulatedMarket(30, 2)
    store = m.store
    store.trade_blocks.capacity = 40  # small capacities, so that a few days overflow them
    store.minute_blocks.capacity = 80
    store.hour_aggs.capacity = 1500
    store.day_aggs.capacity = 200
    for hour in range(0, 4 * 24, 3):
        now = NOW + hour * HOUR_MS
        for symbol in m.symbols:
            m.ticker_24h(symbol, now)
        m.klines("BTCUSDT", "1m", limit=300, now_ms=now)
        m.klines("ETHUSDT", "1d", limit=30, now_ms=now)
        m.trades("SOLUSDT", 1000, now)
        for lru in (store.trade_blocks, store.minute_blocks, store.hour_aggs, store.day_aggs):
            assert len(lru) <= lru.capacity
    assert len(store.trade_blocks) == 40 and len(store.minute_blocks) == 80  # full, not more
    assert len(m._window_memo) == len(m.symbols)
    # evicted entries come back the same
    fresh = SimulatedMarket(30, 2)
    assert m.ticker_24h("BTCUSDT", NOW) == fresh.ticker_24h("BTCUSDT", NOW)
