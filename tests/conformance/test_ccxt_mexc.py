"""ccxt's stock `mexc` class against the simulator: what a third-party MEXC client does must
work, give the simulator's numbers and raise the exception classes ccxt maps MEXC's codes to.

ccxt is a dev dependency only; without it these tests are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.exchange.simulator import SimulatorServer

ccxt = pytest.importorskip("ccxt")

pytestmark = pytest.mark.unit

NOW = 1_760_000_123_456
SPOT_TIMEFRAMES = {
    "1m": "1m",
    "5m": "5m",
    "15m": "15m",
    "30m": "30m",
    "1h": "60m",
    "4h": "4h",
    "1d": "1d",
    "1w": "1W",
    "1M": "1M",
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(n_symbols=25, seed=6, clock=lambda: NOW, weight_limit=10**6) as server:
        yield server


@pytest.fixture(scope="module")
def mexc(sim: SimulatorServer) -> Any:
    """ccxt.mexc with every API (spot and futures, public and private) sent to the simulator."""
    exchange = ccxt.mexc({"enableRateLimit": False, "timeout": 10_000})
    base = sim.url
    exchange.urls["api"] = {
        "spot": {"public": base, "private": base},
        "spot2": {"public": base, "private": base},
        "contract": {"public": f"{base}/api/v1/contract", "private": f"{base}/api/v1/private"},
        "broker": {"private": f"{base}/api/v3/broker"},
    }
    exchange.load_markets()
    return exchange


def rest(sim: SimulatorServer, path: str, **params: Any) -> Any:
    r = httpx.get(f"{sim.url}/api/v3/{path}", params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_load_markets(mexc: Any, sim: SimulatorServer) -> None:
    assert mexc.fetch_time() == NOW
    info = rest(sim, "exchangeInfo")["symbols"]
    assert {m["id"] for m in mexc.markets.values()} == {s["symbol"] for s in info}
    btc = mexc.market("BTC/USDT")
    assert (btc["spot"], btc["base"], btc["quote"]) == (True, "BTC", "USDT")
    spec = sim.market.spec("BTCUSDT")
    assert Decimal(str(btc["precision"]["price"])) == Decimal(1).scaleb(-spec.quote_prec)
    assert Decimal(str(btc["taker"])) == Decimal(spec.taker_commission)
    offline = [s["symbol"] for s in info if s["status"] != "1"]
    assert offline and all(not mexc.markets_by_id[s][0]["active"] for s in offline)
    assert mexc.markets_by_id["ETHBTC"][0]["symbol"] == "ETH/BTC"


def test_tickers(mexc: Any, sim: SimulatorServer) -> None:
    ticker = mexc.fetch_ticker("SOL/USDT")
    raw = rest(sim, "ticker/24hr", symbol="SOLUSDT")
    assert ticker["timestamp"] == NOW
    assert [Decimal(str(ticker[k])) for k in ("last", "open", "high", "low", "bid", "ask")] == [
        Decimal(raw[k])
        for k in ("lastPrice", "openPrice", "highPrice", "lowPrice", "bidPrice", "askPrice")
    ]
    assert Decimal(str(ticker["baseVolume"])) == Decimal(raw["volume"])
    tickers = mexc.fetch_tickers()
    assert len(tickers) == len(sim.market.symbols)
    assert tickers["SOL/USDT"]["last"] == ticker["last"]


def test_order_book(mexc: Any, sim: SimulatorServer) -> None:
    book = mexc.fetch_order_book("BTC/USDT", 20)
    raw = rest(sim, "depth", symbol="BTCUSDT", limit=20)
    assert book["nonce"] == int(raw["lastUpdateId"]) and book["timestamp"] == NOW
    for side in ("bids", "asks"):
        assert [[Decimal(str(p)), Decimal(str(q))] for p, q in book[side]] == [
            [Decimal(p), Decimal(q)] for p, q in raw[side]
        ]
    best = mexc.fetch_ticker("BTC/USDT")
    assert (best["bid"], best["ask"]) == (book["bids"][0][0], book["asks"][0][0])


@pytest.mark.parametrize("timeframe", list(SPOT_TIMEFRAMES))
def test_ohlcv_for_every_spot_timeframe(mexc: Any, sim: SimulatorServer, timeframe: str) -> None:
    assert mexc.options["timeframes"]["spot"][timeframe] == SPOT_TIMEFRAMES[timeframe]
    candles = mexc.fetch_ohlcv("ETH/USDT", timeframe, limit=5)
    raw = rest(sim, "klines", symbol="ETHUSDT", interval=SPOT_TIMEFRAMES[timeframe], limit=5)
    assert len(candles) == 5
    assert [[c[0], *(Decimal(str(x)) for x in c[1:])] for c in candles] == [
        [r[0], *(Decimal(x) for x in r[1:6])] for r in raw
    ]


def test_trades(mexc: Any, sim: SimulatorServer) -> None:
    trades = mexc.fetch_trades("BTC/USDT", limit=50)  # ccxt reads /api/v3/aggTrades
    raw = rest(sim, "trades", symbol="BTCUSDT", limit=50)
    assert [
        (t["timestamp"], Decimal(str(t["price"])), Decimal(str(t["amount"]))) for t in trades
    ] == [(r["time"], Decimal(r["price"]), Decimal(r["qty"])) for r in raw]
    assert [t["side"] for t in trades] == ["sell" if r["isBuyerMaker"] else "buy" for r in raw]
    window = mexc.fetch_trades("BTC/USDT", since=NOW - 300_000, params={"until": NOW})
    assert window and all(NOW - 300_000 <= t["timestamp"] <= NOW for t in window)


def test_errors_map_to_ccxt_exceptions(mexc: Any, sim: SimulatorServer) -> None:
    with pytest.raises(ccxt.BadSymbol):  # -1121
        mexc.spotPublicGetTicker24hr({"symbol": "NOPEUSDT"})
    with pytest.raises(ccxt.BadRequest):  # 700008
        mexc.spotPublicGetDepth({"symbol": "BTCUSDT", "limit": "ten"})
    with pytest.raises(ccxt.BadRequest):  # -1128
        mexc.spotPublicGetKlines(
            {"symbol": "BTCUSDT", "interval": "1m", "startTime": 9, "endTime": 1}
        )
    sim.faults.add("rate_limit:count=1,retry_after=2")
    with pytest.raises(ccxt.RateLimitExceeded):  # body code 429
        mexc.fetch_ticker("ETH/USDT")
    sim.faults.add("server_error:count=1,status=503")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        mexc.fetch_ticker("ETH/USDT")
    assert mexc.fetch_ticker("ETH/USDT")["last"] > 0  # and it recovers
