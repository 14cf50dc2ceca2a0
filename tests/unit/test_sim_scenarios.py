"""Market scenarios of the MEXC simulator: price, spread, depth and trend overrides."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import pytest

from app.exchange.simulator import (
    Scenario,
    SimulatedMarket,
    SimulatorServer,
    parse_scenario_spec,
    run_simulator,
)

pytestmark = pytest.mark.unit

N_SYMBOLS = 30
SEED = 4
MINUTE = 60_000
M0 = 1_749_999_960_000  # a minute's openTime (2025-06-15T14:26:00Z)
START = M0 + 30_000  # scenarios start in the middle of the M0 candle
BASE = SimulatedMarket(N_SYMBOLS, SEED)  # never given a scenario: the reference


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def sim(clock: Clock) -> Iterator[SimulatorServer]:
    with SimulatorServer(n_symbols=N_SYMBOLS, seed=SEED, clock=clock, weight_limit=10**6) as s:
        yield s


@pytest.fixture
def client(sim: SimulatorServer, clock: Clock) -> Iterator[httpx.Client]:
    clock.now = START
    with httpx.Client(base_url=sim.url, timeout=5) as c:
        assert c.post("/_sim/reset").json() == {"ok": True}
        yield c


def tick(symbol: str) -> Decimal:
    return Decimal(1).scaleb(-BASE.spec(symbol).quote_prec)


def unit(symbol: str) -> Decimal:
    return Decimal(1).scaleb(-BASE.spec(symbol).base_prec)


def post(client: httpx.Client, **body: Any) -> dict[str, Any]:
    r = client.post("/_sim/scenarios", json=body)
    assert r.status_code == 201, r.text
    return r.json()["scenario"]


def get(client: httpx.Client, path: str, **params: Any) -> Any:
    r = client.get(f"/api/v3/{path}", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def spread_ticks(symbol: str, factor: Decimal | str = 1) -> int:
    """How far a trade of a scenario market may lie from the factor times the seed market's
    trade at the same moment: prices move by the factor, a spread of the symbol's width does
    not."""
    return 2 + math.ceil(abs(Decimal(factor) - 1) * BASE.spec(symbol).spread_ticks)


def assert_near(actual: str, expected: Decimal, symbol: str, ticks: int = 2) -> None:
    diff = abs(Decimal(actual) - expected)
    assert diff <= ticks * tick(symbol), f"{actual} vs {expected} ({diff / tick(symbol)} ticks)"


# ---- price_factor --------------------------------------------------------------------------


def test_price_factor_moves_every_price(client: httpx.Client, clock: Clock) -> None:
    body = post(client, symbol="BTCUSDT", price_factor="0.85")
    assert body == {
        "symbol": "BTCUSDT",
        "price_factor": "0.85",
        "spread_factor": "1",
        "depth_factor": "1",
        "trend_pct_per_min": "0",
        "started_at_ms": START,
    }
    f = Decimal("0.85")
    now = clock.now = START + 90_000
    last = get(client, "ticker/price", symbol="BTCUSDT")["price"]
    assert_near(last, BASE.price("BTCUSDT", now) * f, "BTCUSDT")

    t24, b24 = get(client, "ticker/24hr", symbol="BTCUSDT"), BASE.ticker_24h("BTCUSDT", now)
    assert t24["lastPrice"] == last
    assert t24["openPrice"] == b24["openPrice"]  # the 24h open keeps its history
    assert Decimal(t24["priceChange"]) == Decimal(last) - Decimal(t24["openPrice"])
    for key in ("bidPrice", "askPrice"):
        assert_near(t24[key], Decimal(b24[key]) * f, "BTCUSDT", 3)
    assert Decimal(t24["bidPrice"]) <= Decimal(last) <= Decimal(t24["askPrice"])
    assert Decimal(t24["lowPrice"]) <= Decimal(last)

    book, base_book = (
        get(client, "ticker/bookTicker", symbol="BTCUSDT"),
        BASE.book_ticker("BTCUSDT", now),
    )
    assert (book["bidPrice"], book["askPrice"]) == (t24["bidPrice"], t24["askPrice"])
    assert book["bidQty"] == base_book["bidQty"]  # depth unchanged
    depth, base_depth = (
        get(client, "depth", symbol="BTCUSDT", limit=5),
        BASE.depth("BTCUSDT", 5, now),
    )
    assert depth["bids"][0][0] == book["bidPrice"] and depth["asks"][0][0] == book["askPrice"]
    for (p, q), (bp, bq) in zip(depth["bids"], base_depth["bids"], strict=True):
        assert_near(p, Decimal(bp) * f, "BTCUSDT", 3)
        assert q == bq
    avg = get(client, "avgPrice", symbol="BTCUSDT")["price"]  # 5 one-minute samples, 2 after
    assert Decimal(avg) < Decimal(BASE.avg_price("BTCUSDT", now)["price"])

    trades = get(client, "trades", symbol="BTCUSDT", limit=1000)
    base_trades = {t["time"]: t for t in BASE.trades("BTCUSDT", 1000, now)}
    # the same trades at the same times, plus the print that opens the scenario
    prints = [t for t in trades if t["time"] not in base_trades]
    assert [t["time"] for t in prints] == [START]
    # the print trades at the moved quote of its moment (the seed market's last trade before
    # it is a little older, hence the tolerance)
    assert abs(Decimal(prints[0]["price"]) / (BASE.price("BTCUSDT", START) * f) - 1) < Decimal(
        "0.001"
    )
    assert any(t["time"] < START for t in trades) and any(t["time"] > START for t in trades)
    for t in trades:
        if t["time"] < START:
            assert t == base_trades[t["time"]]
        elif t["time"] > START:
            assert t["qty"] == base_trades[t["time"]]["qty"]
            assert_near(t["price"], Decimal(base_trades[t["time"]]["price"]) * f, "BTCUSDT", 3)

    # other symbols are untouched
    assert get(client, "ticker/24hr", symbol="ETHUSDT") == BASE.ticker_24h("ETHUSDT", now)


def test_klines_before_and_after_the_start(client: httpx.Client, clock: Clock) -> None:
    post(client, symbol="BTCUSDT", price_factor=0.8)
    f = Decimal("0.8")
    now = clock.now = START + 5 * MINUTE + 10_000
    rows = get(client, "klines", symbol="BTCUSDT", interval="1m", limit=10)
    base = BASE.klines("BTCUSDT", "1m", limit=10, now_ms=now)
    assert [r[0] for r in rows] == [r[0] for r in base]
    i0 = [r[0] for r in rows].index(M0)
    assert rows[:i0] == base[:i0] and i0 >= 3  # closed before the start: untouched
    started = rows[i0]  # the candle the crash happened in
    assert started[1] == base[i0][1]  # opened before: same open
    assert Decimal(started[4]) <= Decimal(started[1]) * Decimal("0.82")  # closed after: crashed
    assert Decimal(started[2]) >= Decimal(started[1])  # the high is from before the crash
    assert Decimal(started[3]) <= min(Decimal(started[4]), Decimal(started[1]) * Decimal("0.82"))
    assert Decimal(started[5]) > Decimal(base[i0][5])  # the print that opened the crash
    for row, ref in zip(rows[i0 + 1 :], base[i0 + 1 :], strict=True):
        for k in (1, 2, 3, 4):
            assert_near(row[k], Decimal(ref[k]) * f, "BTCUSDT", 3)
        assert row[5] == ref[5]  # base volume unchanged

    # the candle in progress when the crash happens: open kept, close/low at the new price
    clock.now = START + 10_000
    current = get(client, "klines", symbol="BTCUSDT", interval="1m", limit=2)[-1]
    ref = BASE.klines("BTCUSDT", "1m", limit=2, now_ms=clock.now)[-1]
    assert current[0] == M0 and current[1] == ref[1]
    assert current[4] == get(client, "ticker/price", symbol="BTCUSDT")["price"]
    assert Decimal(current[3]) <= min(Decimal(current[4]), Decimal(current[1]) * Decimal("0.82"))
    assert Decimal(current[2]) >= Decimal(current[1])
    hour = get(client, "klines", symbol="BTCUSDT", interval="60m", limit=1)[-1]
    assert hour[4] == current[4] and Decimal(hour[3]) <= Decimal(current[4])
    assert hour[1] == BASE.klines("BTCUSDT", "60m", limit=1, now_ms=clock.now)[-1][1]


def test_scenario_starting_on_a_candle_boundary(client: httpx.Client, clock: Clock) -> None:
    start = M0 + MINUTE
    r = client.post(
        "/_sim/scenarios", json={"symbol": "BTCUSDT", "price_factor": "0.5", "started_at_ms": start}
    )
    assert r.status_code == 201 and r.json()["scenario"]["started_at_ms"] == start
    now = clock.now = start + 3 * MINUTE
    rows = get(client, "klines", symbol="BTCUSDT", interval="1m", limit=6)
    base = BASE.klines("BTCUSDT", "1m", limit=6, now_ms=now)
    i = [r[0] for r in rows].index(start)
    assert rows[:i] == base[:i]  # the candle closing at the start keeps its close
    assert_near(rows[i][1], Decimal(base[i][1]) / 2, "BTCUSDT")


# ---- top movers ----------------------------------------------------------------------------


def _pct(t: dict[str, Any]) -> Decimal:
    return Decimal(t["priceChangePercent"])


def test_rally_makes_the_symbol_the_top_mover(client: httpx.Client, clock: Clock) -> None:
    before = get(client, "ticker/24hr")
    top = max(before, key=_pct)
    usdt = [t for t in before if t["symbol"].endswith("USDT") and t is not top]
    rally = max(usdt, key=_pct)  # the best runner-up: +20 % puts it ahead of the leader
    symbol = rally["symbol"]
    assert (1 + _pct(rally)) * Decimal("1.2") - 1 > _pct(top) + Decimal("0.01")

    post(client, symbol=symbol, price_factor="1.2")
    clock.now = START + MINUTE
    after = {t["symbol"]: t for t in get(client, "ticker/24hr")}
    assert max(after.values(), key=_pct)["symbol"] == symbol
    t = after[symbol]
    ref = BASE.ticker_24h(symbol, clock.now)
    assert t["openPrice"] == ref["openPrice"]
    assert_near(
        t["lastPrice"],
        Decimal(ref["lastPrice"]) * Decimal("1.2"),
        symbol,
        spread_ticks(symbol, "1.2"),
    )
    change = Decimal(t["lastPrice"]) - Decimal(t["openPrice"])
    assert Decimal(t["priceChange"]) == change
    assert _pct(t) == (change / Decimal(t["openPrice"])).quantize(Decimal("0.0001"))
    assert Decimal(t["highPrice"]) >= Decimal(t["lastPrice"])
    assert after[top["symbol"]] == BASE.ticker_24h(top["symbol"], clock.now)


# ---- spread and depth ----------------------------------------------------------------------


def test_spread_factor_widens_book_and_tickers(client: httpx.Client, clock: Clock) -> None:
    now = clock.now = START + 5_000
    sym = next(s for s in BASE.usdt_symbols if BASE.spec(s).tier == "mid")
    natural = BASE.spec(sym).spread_ticks
    ref = BASE.depth(sym, 20, now)
    ref_bid, ref_ask = Decimal(ref["bids"][0][0]), Decimal(ref["asks"][0][0])
    assert (ref_ask - ref_bid) / tick(sym) == natural >= 20  # wide enough to mean something

    post(client, symbol=sym, spread_factor="5")
    depth = get(client, "depth", symbol=sym, limit=20)
    bid, ask = Decimal(depth["bids"][0][0]), Decimal(depth["asks"][0][0])
    assert (ask - bid) / tick(sym) == 5 * natural + 1  # strictly wider than 5 x the natural one
    # the quote is the one the last trade (the print that opened the scenario, or a later
    # trade) left: a taker buy lifted the ask, a sell hit the bid
    last = get(client, "trades", symbol=sym, limit=1)[-1]
    assert Decimal(last["price"]) == (bid if last["isBuyerMaker"] else ask)
    assert abs((bid + ask) / (ref_bid + ref_ask) - 1) < Decimal("0.001")  # about the same mid
    for key in ("bids", "asks"):  # the near levels keep their quantities
        assert [q for _, q in depth[key]] == [q for _, q in ref[key]]
    book = get(client, "ticker/bookTicker", symbol=sym)
    t24 = get(client, "ticker/24hr", symbol=sym)
    assert (book["bidPrice"], book["askPrice"]) == (depth["bids"][0][0], depth["asks"][0][0])
    assert (t24["bidPrice"], t24["askPrice"]) == (book["bidPrice"], book["askPrice"])
    assert t24["lastPrice"] == last["price"]


def _scaled(qty: str, factor: Decimal, sym: str) -> Decimal:
    q = (Decimal(qty) * factor).quantize(unit(sym), ROUND_HALF_EVEN)
    return max(q, unit(sym))


def test_thin_and_thick_books(client: httpx.Client, clock: Clock) -> None:
    now = clock.now = START + 1_000
    sym = "SOLUSDT"
    ref = BASE.depth(sym, 50, now)
    for factor in (Decimal("0.001"), Decimal(10)):
        post(client, symbol=sym, depth_factor=str(factor))
        depth = get(client, "depth", symbol=sym, limit=50)
        for key in ("bids", "asks"):
            assert [p for p, _ in depth[key]] == [p for p, _ in ref[key]]  # prices unchanged
            for (_, q), (_, rq) in zip(depth[key], ref[key], strict=True):
                assert Decimal(q) == _scaled(rq, factor, sym)
        book = get(client, "ticker/bookTicker", symbol=sym)
        assert (book["bidQty"], book["askQty"]) == (depth["bids"][0][1], depth["asks"][0][1])
        t24 = get(client, "ticker/24hr", symbol=sym)
        assert (t24["bidQty"], t24["askQty"]) == (book["bidQty"], book["askQty"])
    thin_total = sum(_scaled(q, Decimal("0.001"), sym) for _, q in ref["bids"])
    assert thin_total < sum(Decimal(q) for _, q in ref["bids"]) / 100


# ---- trend ---------------------------------------------------------------------------------


@pytest.mark.parametrize("trend", ["1", "-1"])
def test_trend_moves_closes_minute_by_minute(
    client: httpx.Client, clock: Clock, trend: str
) -> None:
    post(client, symbol="BTCUSDT", trend_pct_per_min=trend)
    now = clock.now = START + 10 * MINUTE + 5_000
    rows = get(client, "klines", symbol="BTCUSDT", interval="1m", limit=14)
    base = BASE.klines("BTCUSDT", "1m", limit=14, now_ms=now)
    i0 = [r[0] for r in rows].index(M0)
    assert rows[:i0] == base[:i0]
    closes = [Decimal(r[4]) for r in rows[i0:]]
    if trend == "1":
        assert all(b > a for a, b in itertools.pairwise(closes)), closes
    else:
        assert all(b < a for a, b in itertools.pairwise(closes)), closes
    rate = Decimal(trend) / 100
    # each close is the minute's last trade: the seed market's trade of that moment, moved
    trades = get(client, "trades", symbol="BTCUSDT", limit=1000)
    last_of_minute = {t["time"] // MINUTE * MINUTE: t["time"] for t in trades}
    base_price = {t["time"]: Decimal(t["price"]) for t in BASE.trades("BTCUSDT", 1000, now)}
    for row in rows[i0 + 1 :]:
        t = last_of_minute[row[0]]
        expected = base_price[t] * (1 + rate * Decimal(t - START) / MINUTE)
        assert_near(row[4], expected, "BTCUSDT", 3)
    last = get(client, "ticker/price", symbol="BTCUSDT")["price"]
    assert last == rows[-1][4]


def test_steep_fall_and_extreme_factors_keep_the_book_sane(
    client: httpx.Client, clock: Clock
) -> None:
    post(client, symbol="BTCUSDT", trend_pct_per_min=-50, spread_factor=1_000_000)
    post(client, symbol="PEPEUSDT", price_factor="0.000001", depth_factor="0.000001")
    post(client, symbol="ETHUSDT", price_factor=1_000_000, spread_factor="1.5")
    clock.now = START + 30 * MINUTE
    for sym in ("BTCUSDT", "PEPEUSDT", "ETHUSDT"):
        t24 = get(client, "ticker/24hr", symbol=sym)
        prices = [t24[k] for k in ("lastPrice", "bidPrice", "askPrice", "highPrice", "lowPrice")]
        for p in prices:
            assert Decimal(p) > 0 and Decimal(p) == Decimal(p).quantize(tick(sym))
        assert Decimal(t24["bidPrice"]) < Decimal(t24["askPrice"])
        depth = get(client, "depth", symbol=sym, limit=10)
        assert all(Decimal(p) > 0 and Decimal(q) > 0 for p, q in depth["bids"] + depth["asks"])
        for row in get(client, "klines", symbol=sym, interval="5m", limit=20):
            assert all(Decimal(x) > 0 for x in row[1:5])
    pepe = get(client, "ticker/bookTicker", symbol="PEPEUSDT")
    assert Decimal(pepe["bidPrice"]) == tick("PEPEUSDT")  # floored at one tick, never zero
    last = Decimal(get(client, "ticker/price", symbol="PEPEUSDT")["price"])
    assert last in (tick("PEPEUSDT"), 2 * tick("PEPEUSDT"))
    # the fall bottoms out at 0.1 %; the spread, a million times wider, stops at 1.8 x the mid
    btc = get(client, "ticker/bookTicker", symbol="BTCUSDT")
    bid, ask = Decimal(btc["bidPrice"]), Decimal(btc["askPrice"])
    mid = BASE.price("BTCUSDT", clock.now) / 1000
    assert_near(str((bid + ask) / 2), mid, "BTCUSDT", 3)
    assert_near(str(ask - bid), mid * Decimal("1.8"), "BTCUSDT", 3)


# ---- control API ---------------------------------------------------------------------------


def test_list_replace_delete(client: httpx.Client, clock: Clock) -> None:
    assert client.get("/_sim/scenarios").json() == {"scenarios": []}
    post(client, symbol="ETHUSDT", depth_factor="0.5")
    post(client, symbol="BTCUSDT", price_factor="0.7")
    listed = client.get("/_sim/scenarios").json()["scenarios"]
    assert [s["symbol"] for s in listed] == ["BTCUSDT", "ETHUSDT"]  # listing order

    # replacing BTCUSDT's scenario later keeps the crash in the candles in between
    clock.now = START + 3 * MINUTE
    body = client.post("/_sim/scenarios", json={"spec": "BTCUSDT"}).json()["scenario"]
    assert body["price_factor"] == "1" and body["started_at_ms"] == clock.now
    clock.now = START + 6 * MINUTE
    rows = get(client, "klines", symbol="BTCUSDT", interval="1m", limit=8)
    base = BASE.klines("BTCUSDT", "1m", limit=8, now_ms=clock.now)
    crashed = [r for r, b in zip(rows, base, strict=True) if r[4] != b[4]]
    assert [r[0] for r in crashed] == [M0 + k * MINUTE for k in range(3)]
    assert rows[-3:] == base[-3:]
    listed = client.get("/_sim/scenarios").json()["scenarios"]
    assert [(s["symbol"], s["price_factor"]) for s in listed] == [
        ("BTCUSDT", "1"),
        ("ETHUSDT", "1"),
    ]

    assert client.delete("/_sim/scenarios/ETHUSDT").json() == {"removed": "ETHUSDT"}
    r = client.delete("/_sim/scenarios/ETHUSDT")
    assert r.status_code == 404 and "ETHUSDT" in r.json()["error"]
    r = client.delete("/_sim/scenarios/NOPEUSDT")
    assert r.status_code == 400 and "NOPEUSDT" in r.json()["error"]
    post(client, symbol="SOLUSDT", price_factor="2")
    assert client.delete("/_sim/scenarios").json() == {"cleared": 2}
    assert client.get("/_sim/scenarios").json() == {"scenarios": []}
    # clearing removes the scenario's effect on the past too
    assert get(client, "klines", symbol="BTCUSDT", interval="1m", limit=8) == base
    assert client.put("/_sim/scenarios", json={}).status_code == 405


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"symbol": "NOPEUSDT", "price_factor": "0.8"}, "NOPEUSDT"),
        ({"price_factor": "0.8"}, "symbol"),
        ({"symbol": "BTCUSDT", "price_factor": "abc"}, "price_factor"),
        ({"symbol": "BTCUSDT", "price_factor": 0}, "price_factor"),
        ({"symbol": "BTCUSDT", "price_factor": "-1"}, "price_factor"),
        ({"symbol": "BTCUSDT", "spread_factor": "0.5"}, "spread_factor"),
        ({"symbol": "BTCUSDT", "depth_factor": "0"}, "depth_factor"),
        ({"symbol": "BTCUSDT", "depth_factor": True}, "depth_factor"),
        ({"symbol": "BTCUSDT", "trend_pct_per_min": "NaN"}, "trend_pct_per_min"),
        ({"symbol": "BTCUSDT", "trend_pct_per_min": [1]}, "trend_pct_per_min"),
        ({"symbol": "BTCUSDT", "started_at_ms": -5}, "started_at_ms"),
        ({"symbol": "BTCUSDT", "price_factr": "0.8"}, "price_factr"),
        ({"spec": "BTCUSDT:spread_factor=x"}, "spread_factor"),
        ({"spec": "BTCUSDT", "price_factor": "2"}, "spec"),
    ],
)
def test_control_api_errors(client: httpx.Client, body: dict[str, Any], named: str) -> None:
    r = client.post("/_sim/scenarios", json=body)
    assert r.status_code == 400 and named in r.json()["error"], r.text
    assert client.get("/_sim/scenarios").json() == {"scenarios": []}


def test_non_object_body_is_rejected(client: httpx.Client) -> None:
    r = client.post("/_sim/scenarios", content=b"[1, 2]")
    assert r.status_code == 400 and "JSON object" in r.json()["error"]
    r = client.post("/_sim/scenarios", content=b"not json")
    assert r.status_code == 400


def test_reset_clears_scenarios(client: httpx.Client, clock: Clock) -> None:
    post(client, symbol="BTCUSDT", price_factor="0.5", spread_factor="3", depth_factor="0.1")
    post(client, symbol="ETHUSDT", trend_pct_per_min="2")
    clock.now = START + 2 * MINUTE
    assert get(client, "ticker/24hr", symbol="BTCUSDT") != BASE.ticker_24h("BTCUSDT", clock.now)
    assert client.post("/_sim/reset").json() == {"ok": True}
    assert client.get("/_sim/scenarios").json() == {"scenarios": []}
    for sym in ("BTCUSDT", "ETHUSDT"):
        assert get(client, "ticker/24hr", symbol=sym) == BASE.ticker_24h(sym, clock.now)
        assert get(client, "depth", symbol=sym, limit=5) == BASE.depth(sym, 5, clock.now)
        assert get(client, "klines", symbol=sym, interval="1m", limit=5) == BASE.klines(
            sym, "1m", limit=5, now_ms=clock.now
        )


# ---- Python API, specs, start-up -----------------------------------------------------------


def test_parse_scenario_spec() -> None:
    s = parse_scenario_spec(" BTCUSDT:price_factor=0.8, spread_factor=5 ,trend_pct_per_min=-0.5")
    assert s == Scenario(
        "BTCUSDT",
        price_factor=Decimal("0.8"),
        spread_factor=Decimal(5),
        trend_pct_per_min=Decimal("-0.5"),
    )
    assert s.depth_factor == 1 and s.started_at_ms is None
    assert parse_scenario_spec("ETHUSDT") == Scenario("ETHUSDT")
    assert parse_scenario_spec("ETHUSDT:started_at_ms=5").started_at_ms == 5
    for bad, named in [
        ("", "empty"),
        (":price_factor=1", "SYMBOL"),
        ("BTCUSDT:price_factor", "price_factor"),
        ("BTCUSDT:price_factor=", "price_factor"),
        ("BTCUSDT:volume=2", "volume"),
        ("BTCUSDT:price_factor=1,price_factor=2", "duplicate"),
        ("BTCUSDT:depth_factor=-3", "depth_factor"),
        ("BTCUSDT:started_at_ms=soon", "started_at_ms"),
    ]:
        with pytest.raises(ValueError, match=named):
            parse_scenario_spec(bad)


def test_python_api_and_scenarios_at_start() -> None:
    clock = Clock()
    specs = ["BTCUSDT:price_factor=0.9", "ETHUSDT:depth_factor=0.01"]
    with SimulatorServer(n_symbols=5, seed=SEED, clock=clock, scenarios=specs) as s:
        assert [(x.symbol, x.started_at_ms) for x in s.scenarios()] == [
            ("BTCUSDT", START),
            ("ETHUSDT", START),
        ]
        clock.now = START + MINUTE
        base = SimulatedMarket(5, SEED)
        price = httpx.get(f"{s.url}/api/v3/ticker/price", params={"symbol": "BTCUSDT"}).json()
        assert_near(price["price"], base.price("BTCUSDT", clock.now) * Decimal("0.9"), "BTCUSDT")
        made = s.set_scenario("SOLUSDT", price_factor="1.1", trend_pct_per_min=0.25)
        assert made.started_at_ms == clock.now and made.trend_pct_per_min == Decimal("0.25")
        assert s.add_scenario("XRPUSDT:spread_factor=2").spread_factor == 2
        with pytest.raises(ValueError, match="NOPEUSDT"):
            s.set_scenario("NOPEUSDT", price_factor=2)
        with pytest.raises(ValueError, match="spread_factor"):
            s.set_scenario("BTCUSDT", spread_factor="0.1")
        assert s.clear_scenarios("BTCUSDT") == 1 and len(s.scenarios()) == 3
        assert s.clear_scenarios() == 3 and s.scenarios() == []
    with pytest.raises(ValueError, match="NOPEUSDT"):
        SimulatorServer(n_symbols=5, scenarios=["NOPEUSDT:price_factor=2"])
    with pytest.raises(ValueError, match="price_factor"):
        run_simulator("127.0.0.1", 0, 5, 1, None, 500, ["BTCUSDT:price_factor=zero"])


def test_market_api_is_deterministic() -> None:
    def build() -> SimulatedMarket:
        m = SimulatedMarket(12, SEED)
        m.set_scenario("BTCUSDT", started_at_ms=START, price_factor="0.8", trend_pct_per_min=1)
        m.set_scenario("ETHUSDT", started_at_ms=START - 7 * MINUTE, spread_factor=4)
        m.set_scenario("ETHUSDT", started_at_ms=START, depth_factor="0.2")
        return m

    a, b = build(), build()
    now = START + 4 * MINUTE + 123
    for sym in ("BTCUSDT", "ETHUSDT"):
        assert a.ticker_24h(sym, now) == b.ticker_24h(sym, now)
        assert a.depth(sym, 30, now) == b.depth(sym, 30, now)
        assert a.trades(sym, 200, now) == b.trades(sym, 200, now)
        assert a.klines(sym, "1m", limit=20, now_ms=now) == b.klines(
            sym, "1m", limit=20, now_ms=now
        )
    assert a.ticker_24h("BTCUSDT", now) != BASE.ticker_24h("BTCUSDT", now)
    assert a.scenario("ETHUSDT") == Scenario(
        "ETHUSDT", depth_factor=Decimal("0.2"), started_at_ms=START
    )
    # ETHUSDT's widened spread lasted from START - 7 min to START; it's normal again now
    eth_then = a.book_ticker("ETHUSDT", START - MINUTE)
    ref_then = BASE.book_ticker("ETHUSDT", START - MINUTE)
    assert Decimal(eth_then["askPrice"]) - Decimal(eth_then["bidPrice"]) > 3 * (
        Decimal(ref_then["askPrice"]) - Decimal(ref_then["bidPrice"])
    )
    eth_now, ref_now = a.book_ticker("ETHUSDT", now), BASE.book_ticker("ETHUSDT", now)
    assert (eth_now["bidPrice"], eth_now["askPrice"]) == (ref_now["bidPrice"], ref_now["askPrice"])
