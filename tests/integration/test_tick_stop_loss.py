"""A stop-loss exit within one run of the tick that crossed the stop, not at the next poll:
`cdb stream` sees the crossing on MEXC's (the simulator's) WebSocket and sends a keyed
market-data run at once; the pipeline on a real worker sells. No beat runs here, so any fill
can only come from the tick."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal as D

import httpx
import pytest
import redis
from sqlalchemy import text

import celeryconfig
from app.exchange.simulator import SimulatorServer
from tests.conftest import REDIS_URL
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration

STOP_LOSS_PCT = D("0.005")


@pytest.fixture(scope="module")
def sim():
    with SimulatorServer(n_symbols=40, seed=31) as server:
        yield server


@pytest.fixture(scope="module")
def env(stack_env, sim):
    return {
        **stack_env,
        "MEXC_WS_URL": sim.ws_url,
        "STOP_LOSS_PCT": str(STOP_LOSS_PCT),
        "STREAM_TRIGGERS": "stop",
        "STREAM_TRIGGER_MIN_GAP_SEC": "0",
        "SYMBOL_WHITELIST": "BTCUSDT,ETHUSDT,SOLUSDT",
        "TOP_N": "3",
    }


def _quiet_major(sim) -> tuple[str, D]:
    """The major whose last 15 minutes moved least (so the strategy keeps holding it)."""
    best = None
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        rows = httpx.get(
            f"{sim.url}/api/v3/klines", params={"symbol": symbol, "interval": "1m", "limit": 16}
        ).json()
        move = abs(D(rows[-1][4]) / D(rows[0][4]) - 1)
        price = D(
            httpx.get(f"{sim.url}/api/v3/ticker/price", params={"symbol": symbol}).json()["price"]
        )
        if best is None or move < best[0]:
            best = (move, symbol, price)
    assert best is not None
    return best[1], best[2]


def _hold(engine, symbol: str, price: D) -> None:
    """An open position bought at the market, its stop STOP_LOSS_PCT below."""
    now = datetime.now(UTC)
    entry = price
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO portfolios (name, active, opened_at, initial_capital, cash, "
                "realized_pnl, fees_paid, day, day_start_equity, halted, breaker_trips, "
                "stale_paused, updated_at) VALUES ('paper-1', true, :now, 1000, 900, 0, 0, "
                ":day, 1000, false, 0, false, :now)"
            ),
            {"now": now, "day": now.date()},
        )
        conn.execute(
            text(
                "INSERT INTO positions (portfolio_id, symbol, qty, avg_entry, last_price, "
                "stop_price, opened_at, updated_at) SELECT id, :s, :q, :e, :e, :stop, :now, :now "
                "FROM portfolios WHERE active"
            ),
            {
                "s": symbol,
                "q": D("100") / entry,
                "e": entry,
                "stop": entry * (1 - STOP_LOSS_PCT),
                "now": now,
            },
        )


def _wait(what, check, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_crossed_stop_sells_within_one_tick_run(
    start_process, env, engine, sim, clean, celery_client
):
    symbol, price = _quiet_major(sim)
    _hold(engine, symbol, price)
    worker = start_process(
        "worker", "-Q", ",".join(celeryconfig.QUEUES), "-c", "2", "-n", "tick@%h", env=env
    )
    worker.wait_for("ready")
    # One run as beat would send it: it tells the streamer what to watch and where the stop is.
    celery_client.send_task(celeryconfig.MARKET_DATA_TASK, kwargs={"trigger": "manual"})
    with engine.connect() as conn:
        _wait(
            "the first run to go through execution",
            lambda: conn.execute(
                text("SELECT count(*) FROM market_data_runs WHERE execution_done_at IS NOT NULL")
            ).scalar(),
            60,
        )

    stream = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "stream", "--ws-url", sim.ws_url],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    client = redis.Redis.from_url(REDIS_URL)
    try:
        book_key = f"{env['REDIS_KEY_PREFIX']}cdb:stream:book:{symbol}"
        _wait("the streamer watching the held symbol", lambda: client.exists(book_key), 30)
        # The run may also have bought another major; only the held one's stop matters here.
        with engine.connect() as conn:
            held = conn.execute(
                text("SELECT count(*) FROM positions WHERE symbol = :s"), {"s": symbol}
            ).scalar()
        assert held == 1, "the first run sold the position already: pick a quieter symbol"

        crossed_at = datetime.now(UTC)
        httpx.post(
            f"{sim.url}/_sim/scenarios", json={"symbol": symbol, "price_factor": "0.98"}
        ).raise_for_status()

        def sold():
            with engine.connect() as conn:
                return conn.execute(
                    text(
                        "SELECT f.filled_at, r.trigger, r.parameters, s.strategy, s.reason "
                        "FROM fills f JOIN orders o ON o.id = f.order_id "
                        "JOIN signals s ON s.id = o.signal_id "
                        "JOIN market_data_runs r ON r.id = o.run_id "
                        "WHERE f.side = 'SELL' AND f.symbol = :s"
                    ),
                    {"s": symbol},
                ).first()

        fill = _wait("the stop-loss exit's fill", sold, 45)
    finally:
        stream.send_signal(signal.SIGTERM)
        try:
            stream.wait(20)
        except subprocess.TimeoutExpired:
            stream.kill()
        client.close()

    filled_at = fill.filled_at if fill.filled_at.tzinfo else fill.filled_at.replace(tzinfo=UTC)
    latency = (filled_at - crossed_at).total_seconds()
    print(f"\nstop crossed -> exit filled: {latency:.2f} s (tick-driven, no beat)")
    os.environ.setdefault("CDB_TICK_STOP_LATENCY_S", f"{latency:.2f}")
    assert fill.trigger == "tick", fill
    assert "stop" in (fill.parameters or {}).get("reason", ""), fill.parameters
    assert fill.strategy == "risk.stop_loss" and fill.reason.startswith("stop-loss")
    assert latency < 15, f"the exit took {latency:.1f} s after the crossing tick"
