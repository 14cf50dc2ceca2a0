"""`cdb` as people and scripts use it: subprocesses against the simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal

import httpx
import pytest

from app.exchange.simulator import SimulatorServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim():
    with SimulatorServer(n_symbols=40, seed=11) as server:
        yield server


def cdb(*args: str, sim=None, tmp_path=None, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MEXC_", "CDB_"))}
    if sim is not None:
        full_env["MEXC_BASE_URL"] = sim.url
    if tmp_path is not None:
        full_env["STATE_DIR"] = str(tmp_path)
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_symbols_lists_tradable_markets_with_their_rules(sim):
    proc = cdb("market", "symbols", sim=sim)
    assert proc.returncode == 0, proc.stderr
    markets = json.loads(proc.stdout)
    info = httpx.get(f"{sim.url}/api/v3/exchangeInfo").json()["symbols"]
    tradable = [s for s in info if s["status"] == "1" and s["isSpotTradingAllowed"]]
    assert [m["symbol"] for m in markets] == [s["symbol"] for s in tradable]
    btc = next(m for m in markets if m["symbol"] == "BTCUSDT")
    raw = next(s for s in info if s["symbol"] == "BTCUSDT")
    assert btc["min_notional"] == raw["quoteAmountPrecision"]
    assert btc["min_qty"] == raw["baseSizePrecision"]
    assert btc["taker_fee"] == raw["takerCommission"]
    assert btc["price_precision"] == raw["quoteAssetPrecision"]
    assert set(btc) == {
        "symbol",
        "base",
        "quote",
        "status",
        "min_notional",
        "min_qty",
        "price_precision",
        "qty_precision",
        "taker_fee",
        "maker_fee",
    }


def test_tickers_give_percent_and_exact_strings():
    # A frozen market clock: the CLI's answer and the raw one below are the same ticker.
    frozen_ms = time.time_ns() // 1_000_000
    with SimulatorServer(n_symbols=40, seed=11, clock=lambda: frozen_ms) as sim:
        proc = cdb("market", "tickers", "--symbols", "BTCUSDT,ETHUSDT", sim=sim)
        raws = {
            symbol: httpx.get(f"{sim.url}/api/v3/ticker/24hr", params={"symbol": symbol}).json()
            for symbol in ("BTCUSDT", "ETHUSDT")
        }
    assert proc.returncode == 0, proc.stderr
    tickers = json.loads(proc.stdout)
    assert [t["symbol"] for t in tickers] == ["BTCUSDT", "ETHUSDT"]
    for t in tickers:
        assert t["close_time"].endswith("Z")
        assert Decimal(t["ask"]) > Decimal(t["bid"])
        raw = raws[t["symbol"]]
        assert t["last_price"] == raw["lastPrice"]
        # MEXC's fraction, scaled to percent without float rounding.
        assert Decimal(t["price_change_pct"]) == Decimal(raw["priceChangePercent"]) * 100


def test_klines_and_book(sim):
    proc = cdb("market", "klines", "ETHUSDT", "--interval", "15m", "--limit", "3", sim=sim)
    klines = json.loads(proc.stdout)
    assert len(klines) == 3 and list(klines[0]) == [
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "close_time",
        "quote_volume",
    ]
    book = json.loads(cdb("market", "book", "ETHUSDT", "--limit", "4", sim=sim).stdout)
    assert len(book["bids"]) == len(book["asks"]) == 4
    assert Decimal(book["bids"][0][0]) < Decimal(book["asks"][0][0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("market", "klines", "BTCUSDT", "--interval", "1h"), "Invalid interval."),
        (("market", "book", "NOPEUSDT"), "Invalid symbol."),
        (("market", "tickers", "--symbols", "NOPEUSDT"), "Invalid symbol."),
    ],
)
def test_unknown_symbol_or_interval_exits_2_with_mexcs_message(sim, args, message):
    proc = cdb(*args, sim=sim)
    assert proc.returncode == 2
    assert message in proc.stderr and "-1121" in proc.stderr
    assert proc.stdout == ""


def test_bad_settings_exit_1_naming_the_variable(sim):
    proc = cdb("market", "symbols", sim=sim, MAX_EXPOSURE_PCT="lots")
    assert proc.returncode == 1
    assert "MAX_EXPOSURE_PCT" in proc.stderr


def test_market_data_run_in_process_on_embedded_sqlite(sim, tmp_path):
    assert cdb("db", "upgrade", tmp_path=tmp_path).returncode == 0
    proc = cdb("market-data", "run", sim=sim, tmp_path=tmp_path, TOP_N="3", MIN_QUOTE_VOLUME="0")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "ok" and len(summary["stored"]) == 3
    assert (tmp_path / "cdb.sqlite3").exists()
    current = json.loads(cdb("db", "current", tmp_path=tmp_path).stdout)
    assert current["revision"] == current["head"][0]


def test_run_on_an_unmigrated_database_says_what_to_do(sim, tmp_path):
    proc = cdb("market-data", "run", sim=sim, tmp_path=tmp_path / "fresh")
    assert proc.returncode == 1
    assert "cdb db upgrade" in proc.stderr and "Traceback" not in proc.stderr
