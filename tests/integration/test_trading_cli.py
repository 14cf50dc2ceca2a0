"""The trading CLI as a user drives it: run-once, portfolio, orders, trace, risk, replay."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal

import httpx
import pytest

from app.exchange.simulator import SimulatorServer
from tests.conftest import RALLY
from tests.integration.test_cli import cdb

pytestmark = pytest.mark.integration


WATCHED = {"SYMBOL_WHITELIST": "BTCUSDT,ETHUSDT,SOLUSDT", "TOP_N": "3", "MIN_QUOTE_VOLUME": "0"}


MARKETS: dict = {}


@pytest.fixture(scope="module")
def sim():
    with SimulatorServer(n_symbols=120, seed=5, scenarios=[RALLY]) as server:
        info = httpx.get(f"{server.url}/api/v3/exchangeInfo").json()["symbols"]
        MARKETS.update({m["symbol"]: m for m in info})
        yield server


# Passes go on (a second apart) until one has filled, three at least: see RALLY.
MIN_PASSES, MAX_PASSES = 3, 8


@pytest.fixture(scope="module")
def traded(sim, tmp_path_factory):
    """A state folder whose SQLite database has seen three or more pipeline passes, at
    least one of them with a fill unless trading is broken."""
    state = tmp_path_factory.mktemp("trading")
    assert cdb("db", "upgrade", tmp_path=state).returncode == 0
    passes: list[dict] = []
    while len(passes) < MIN_PASSES or (
        len(passes) < MAX_PASSES and not any(p["fills"] for p in passes)
    ):
        if len(passes) >= MIN_PASSES:
            time.sleep(1)
        proc = cdb("pipeline", "run-once", sim=sim, tmp_path=state, **WATCHED)
        assert proc.returncode == 0, proc.stderr
        passes.append(json.loads(proc.stdout))
    return state, passes


def run(state, *args, **env):
    proc = cdb(*args, tmp_path=state, **env)
    return proc, (json.loads(proc.stdout) if proc.stdout.strip() else None)


def test_run_once_trades_on_paper_and_the_portfolio_adds_up(traded):
    state, passes = traded
    assert all(p["market_data"] == "ok" for p in passes)
    assert sum(p["fills"] for p in passes) >= 1, passes
    _, portfolio = run(state, "portfolio", "--exact")
    positions = portfolio["positions"]
    assert positions
    value = sum(Decimal(p["market_value_usdt"]) for p in positions)
    assert Decimal(portfolio["equity_usdt"]) == Decimal(portfolio["cash_usdt"]) + value
    assert Decimal(portfolio["exposure_usdt"]) == value
    assert portfolio["halted"] is False
    # For people: money to the cent, `_pct` in percent, quantities at the symbol's precision.
    _, shown = run(state, "portfolio")
    assert Decimal(shown["equity_usdt"]) == Decimal(portfolio["equity_usdt"]).quantize(
        Decimal("0.01")
    )
    assert Decimal(shown["exposure_pct"]) == (
        100 * Decimal(portfolio["exposure_usdt"]) / Decimal(portfolio["equity_usdt"])
    ).quantize(Decimal("0.0001"))
    btc = next(p for p in shown["positions"] if p["symbol"] == "BTCUSDT")
    assert len(btc["qty"].split(".")[1]) == MARKETS["BTCUSDT"]["baseAssetPrecision"]


def test_orders_and_trace_tell_the_whole_story(traded):
    state, _ = traded
    _, orders = run(state, "orders", "--limit", "50")
    filled = [o for o in orders if o["status"] == "filled"]
    assert filled and all(o["filled_qty"] and o["notional_usdt"] for o in filled)
    for o in filled:  # requested and filled quantities side by side, with the notional
        assert Decimal(o["filled_qty"]) <= Decimal(o["requested_qty"])
        notional = Decimal(o["filled_qty"]) * Decimal(o["fill_price"])
        assert abs(notional - Decimal(o["notional_usdt"])) <= Decimal("0.01")
    _, trace = run(state, "trace", str(filled[0]["order_id"]))
    assert trace["order"]["client_order_id"] == f"cdb-{trace['signal']['signal_id']}"
    assert [layer["layer"] for layer in trace["risk"]["layers"]] == [1, 2, 3, 4, 5, 6]
    assert all(layer["values"] for layer in trace["risk"]["layers"])
    drawdown = trace["risk"]["layers"][0]["values"]
    assert drawdown["limit_pct"] == "5.0000" and isinstance(drawdown["halted"], bool)
    assert not re.search(r"[0-9]E[-+]?[0-9]", json.dumps(trace))  # no 0E-65 and the like
    assert trace["market_data"]["book"]["best_ask"]
    assert trace["fill"]["price"] == filled[0]["fill_price"]
    proc, _ = run(state, "trace", "999999")
    assert proc.returncode == 2 and "no order 999999" in proc.stderr


def test_halt_blocks_resume_releases_and_everything_is_audited(traded, sim):
    state, _ = traded
    _, halted = run(state, "risk", "halt", "--reason", "manual check")
    assert halted["changed"] and halted["state"]["halted"]
    proc, _ = run(state, "risk", "release-drawdown")
    assert proc.returncode == 0
    _, portfolio = run(state, "portfolio")
    assert portfolio["halted"] is True and "manual check" in portfolio["halt_reason"]
    _, resumed = run(state, "risk", "resume")
    assert resumed["changed"] and not resumed["state"]["halted"]
    _, alerts = run(state, "alerts", "--limit", "5")
    messages = [a["message"] for a in alerts if a["source"] == "operator"]
    assert messages[:2] == [
        "trading resumed by operator",
        "trading halted by operator: manual check",
    ]


def test_replaying_an_export_twice_gives_identical_decisions(traded, tmp_path):
    state, passes = traded
    export = tmp_path / "session.jsonl"
    _, exported = run(state, "export", str(export))
    assert exported["runs"] == len(passes)
    _, first = run(state, "replay", str(export))
    _, second = run(state, "replay", str(export))
    assert first == second
    assert first["runs"] == len(passes) and first["digest"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "header", "format": "something-else"}\n')
    proc, _ = run(state, "replay", str(bad))
    assert proc.returncode == 2 and "cdb export" in proc.stderr


def test_stats_answer_the_spec_questions(traded):
    state, passes = traded
    _, stats = run(state, "stats")
    assert sum(stats["trades_per_day"].values()) == sum(p["fills"] for p in passes)
    assert stats["avg_signal_to_order_seconds"] is not None
    assert len(stats["equity_curve"]) == stats["equity_points"] == len(passes)
    _, limited = run(state, "stats", "--limit", "1")
    assert limited["equity_curve"] == stats["equity_curve"][-1:]
