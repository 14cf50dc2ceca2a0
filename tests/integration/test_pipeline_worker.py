"""The whole chain on real workers: market data → signals → risk → execution, on Redis and
PostgreSQL, with the simulator driven into each risk situation."""

from __future__ import annotations

import time
import uuid
from decimal import ROUND_UP, Decimal

import httpx
import pytest
from sqlalchemy import text

import celeryconfig
from app.exchange.simulator import SimulatorServer
from tests.integration.conftest import start_all_queue_worker, wait_for_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sim():
    with SimulatorServer(n_symbols=300, seed=7) as server:
        yield server


def calmest(market, count: int) -> list[str]:
    """The tradable symbols whose 15-minute moves stay smallest over the next 20 minutes, so
    the strategy only acts on the moves a test makes."""
    now = int(time.time() * 1000)

    def largest_move(symbol: str) -> Decimal:
        return max(
            abs(market.price(symbol, t) / market.price(symbol, t - 900_000) - 1)
            for t in range(now, now + 1_200_000, 30_000)
        )

    tradable = [
        s
        for s in market.usdt_symbols
        if market.spec(s).status == "1" and market.spec(s).spot_allowed
    ]
    return sorted(tradable, key=largest_move)[:count]


@pytest.fixture(scope="module")
def stack_env(stack_env, sim):
    symbols = calmest(sim.market, 6)
    return {
        **stack_env,
        "SYMBOL_WHITELIST": ",".join(symbols),
        "TOP_N": "6",
        "MAX_POSITION_PCT": "0.10",
        "MAX_EXPOSURE_PCT": "0.25",
        "MAX_DAILY_DRAWDOWN_PCT": "0.02",
        "DATA_STALE_TIMEOUT_SEC": "10",
        "INITIAL_CAPITAL": "1000",
    }


@pytest.fixture(scope="module")
def symbols(stack_env) -> list[str]:
    return stack_env["SYMBOL_WHITELIST"].split(",")


@pytest.fixture(scope="module")
def worker(start_process):
    return start_all_queue_worker(start_process, "pipe", concurrency=2)


@pytest.fixture
def calm_market(sim, symbols):
    """Every watched symbol flat: momentum comes only from the scenarios a test sets."""
    for symbol in symbols:
        scenario(sim, symbol, trend_pct_per_min="0")


def scenario(sim, symbol: str, **fields) -> None:
    """Move one market; books stay deep so only the moves a test makes trip the risk layers
    (a replaced scenario resets the factors it does not name)."""
    # The strategy wants the move inside the current 1m candle: keep clear of its end, so
    # the run that follows still sees the candle the move happened in.
    second = time.time() % 60
    if second > 45:
        time.sleep(60.5 - second)
    body = {"symbol": symbol, "depth_factor": "50", **fields}
    httpx.post(f"{sim.url}/_sim/scenarios", json=body).raise_for_status()


def rows(engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def one(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def assert_marked_at_newest_price(engine, run_id: int, symbol: str) -> Decimal:
    """After the run's execution, the symbol's position (the only one held) and the run's
    equity snapshot are marked at the newest stored price; returns that price."""
    latest = one(engine, "SELECT last_price FROM latest_tickers WHERE symbol = :s", s=symbol)
    position = rows(engine, "SELECT * FROM positions WHERE symbol = :s", s=symbol)[0]
    assert position["last_price"] == latest
    equity = rows(engine, "SELECT * FROM equity_snapshots WHERE run_id = :r", r=run_id)[0]
    assert equity["equity"] == equity["cash"] + position["qty"] * latest
    return latest


def run_pipeline(celery, engine) -> dict:
    """Send a market-data task and wait until its execution stage has recorded equity."""
    task_id = str(uuid.uuid4())
    celery.send_task(celeryconfig.MARKET_DATA_TASK, kwargs={"trigger": "manual"}, task_id=task_id)
    run = wait_for_run(engine, task_id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = one(
            engine,
            "SELECT count(*) FROM task_runs WHERE name = :n AND args::text = :a "
            "AND state IN ('SUCCESS', 'FAILURE')",
            n=celeryconfig.EXECUTION_TASK,
            a=f"[{run['id']}]",
        )
        if done:
            return run
        time.sleep(0.2)
    raise AssertionError(f"execution for run {run['id']} did not finish")


def test_a_rally_buys_and_the_order_is_traceable(
    worker, celery_client, engine, sim, clean, calm_market, symbols
):
    scenario(sim, symbols[0], price_factor="1.03")
    run = run_pipeline(celery_client, engine)

    buys = rows(
        engine, "SELECT * FROM signals WHERE run_id = :r AND direction = 'BUY'", r=run["id"]
    )
    assert [s["symbol"] for s in buys] == [symbols[0]]
    orders = rows(engine, "SELECT * FROM orders WHERE run_id = :r", r=run["id"])
    assert len(orders) == 1 and orders[0]["status"] == "filled"
    fill = rows(engine, "SELECT * FROM fills WHERE order_id = :o", o=orders[0]["id"])[0]
    assert fill["qty"] > 0
    taker = one(engine, "SELECT taker_commission FROM markets WHERE symbol = :s", s=symbols[0])
    expected_fee = (fill["qty"] * fill["price"] * taker).quantize(Decimal("1E-8"), ROUND_UP)
    assert fill["notional"] == fill["qty"] * fill["price"]
    assert fill["fee"] == expected_fee
    position = rows(engine, "SELECT * FROM positions")[0]
    assert position["symbol"] == symbols[0] and position["qty"] == fill["qty"]
    assert position["stop_price"] < fill["price"]
    equity = rows(engine, "SELECT * FROM equity_snapshots WHERE run_id = :r", r=run["id"])
    assert len(equity) == 1
    assert_marked_at_newest_price(engine, run["id"], symbols[0])
    decision = rows(
        engine, "SELECT * FROM risk_decisions WHERE signal_id = :s", s=orders[0]["signal_id"]
    )[0]
    assert [v["layer"] for v in decision["verdicts"]] == [1, 2, 3, 4, 5, 6]
    # Every stage's task run is recorded, chained by the run id.
    names = {r["name"] for r in rows(engine, "SELECT name FROM task_runs WHERE state='SUCCESS'")}
    assert {
        celeryconfig.MARKET_DATA_TASK,
        celeryconfig.SIGNALS_TASK,
        celeryconfig.RISK_TASK,
        celeryconfig.EXECUTION_TASK,
    } <= names


def test_a_held_position_is_marked_at_the_newest_price(
    worker, celery_client, engine, sim, clean, calm_market, symbols
):
    scenario(sim, symbols[5], price_factor="1.03")
    bought = run_pipeline(celery_client, engine)
    assert one(engine, "SELECT count(*) FROM fills") == 1, "the rally bought nothing"
    scenario(sim, symbols[5], price_factor="1.034")  # up a little more: held, no order
    moved = run_pipeline(celery_client, engine)

    assert one(engine, "SELECT count(*) FROM orders WHERE run_id = :r", r=moved["id"]) == 0
    latest = assert_marked_at_newest_price(engine, moved["id"], symbols[5])
    then = one(
        engine,
        "SELECT last_price FROM ticker_snapshots WHERE run_id = :r AND symbol = :s",
        r=bought["id"],
        s=symbols[5],
    )
    assert latest > then


def test_execution_redelivered_and_rerun_fills_once(
    worker, celery_client, engine, sim, clean, calm_market, symbols
):
    scenario(sim, symbols[1], price_factor="1.03")
    run = run_pipeline(celery_client, engine)
    fills_before = one(engine, "SELECT count(*) FROM fills")
    assert fills_before == 1

    task_id = str(uuid.uuid4())
    for _ in range(2):  # the same message twice: what a redelivery looks like
        celery_client.send_task(celeryconfig.EXECUTION_TASK, args=[run["id"]], task_id=task_id)
    celery_client.send_task(celeryconfig.EXECUTION_TASK, args=[run["id"]])  # a manual re-run
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        finished = one(
            engine,
            "SELECT count(*) FROM task_runs WHERE name = :n AND "
            "args::text = :a AND state = 'SUCCESS'",
            n=celeryconfig.EXECUTION_TASK,
            a=f"[{run['id']}]",
        )
        if finished >= 3:
            break
        time.sleep(0.2)
    assert finished >= 3
    assert one(engine, "SELECT count(*) FROM fills") == fills_before
    assert one(engine, "SELECT sum(qty) FROM positions") == one(engine, "SELECT qty FROM fills")


def test_a_wide_spread_trips_the_circuit_breaker(
    worker, celery_client, engine, sim, clean, calm_market, symbols
):
    for _ in range(3):  # a spread history to compare against
        run_pipeline(celery_client, engine)
    scenario(sim, symbols[2], price_factor="1.03", spread_factor="50")
    run = run_pipeline(celery_client, engine)

    decisions = rows(
        engine,
        "SELECT d.* FROM risk_decisions d JOIN signals s ON s.id = "
        "d.signal_id WHERE s.run_id = :r AND s.symbol = :s",
        r=run["id"],
        s=symbols[2],
    )
    assert decisions and decisions[0]["rejected_by"] == "market_anomaly"
    alerts = rows(engine, "SELECT * FROM alerts WHERE code = 'CIRCUIT_BREAKER'")
    assert alerts and alerts[0]["level"] == "WARNING"
    paused = one(engine, "SELECT breaker_paused_until FROM portfolios")
    assert paused is not None
    assert one(engine, "SELECT count(*) FROM orders WHERE symbol = :s", s=symbols[2]) == 0


def test_a_rally_fills_exposure_then_orders_are_blocked(
    worker, celery_client, engine, sim, clean, calm_market, symbols
):
    for symbol in symbols[:4]:
        scenario(sim, symbol, price_factor="1.04")
    run = run_pipeline(celery_client, engine)

    decisions = rows(
        engine,
        "SELECT d.*, s.symbol FROM risk_decisions d JOIN signals s ON "
        "s.id = d.signal_id WHERE s.run_id = :r AND s.direction = 'BUY'",
        r=run["id"],
    )
    assert len(decisions) >= 3
    approved = [d for d in decisions if d["approved"]]
    blocked = [d for d in decisions if d["rejected_by"] == "exposure"]
    assert approved and blocked, [(d["symbol"], d["rejected_by"]) for d in decisions]
    equity = one(engine, "SELECT equity FROM equity_snapshots WHERE run_id = :r", r=run["id"])
    exposure = one(engine, "SELECT exposure FROM equity_snapshots WHERE run_id = :r", r=run["id"])
    assert exposure / equity <= 0.25
    assert rows(engine, "SELECT * FROM alerts WHERE code = 'RISK_LIMIT' AND level = 'CRITICAL'")


def test_a_crash_breaches_drawdown_and_halts(
    worker, celery_client, engine, sim, clean, calm_market, symbols
):
    for symbol in symbols[:2]:
        scenario(sim, symbol, price_factor="1.03")
    run_pipeline(celery_client, engine)
    assert one(engine, "SELECT count(*) FROM positions") == 2

    for symbol in symbols[:2]:
        scenario(sim, symbol, price_factor="0.70")
    scenario(sim, symbols[3], price_factor="1.05")  # a tempting entry while halted
    run = run_pipeline(celery_client, engine)

    assert one(engine, "SELECT halted FROM portfolios") is True
    assert one(engine, "SELECT halt_reason FROM portfolios").startswith("drawdown")
    critical = rows(
        engine,
        "SELECT * FROM alerts WHERE code = 'RISK_LIMIT' AND "
        "level = 'CRITICAL' AND message LIKE '%drawdown%'",
    )
    assert critical
    entry = rows(
        engine,
        "SELECT d.* FROM risk_decisions d JOIN signals s ON s.id = d.signal_id "
        "WHERE s.run_id = :r AND s.symbol = :s",
        r=run["id"],
        s=symbols[3],
    )
    assert entry and entry[0]["rejected_by"] == "daily_drawdown"
    # The stop-loss exits still went through.
    exits = rows(engine, "SELECT * FROM signals WHERE run_id = :r AND is_exit", r=run["id"])
    assert {s["symbol"] for s in exits} == set(symbols[:2])
    exit_orders = rows(
        engine,
        "SELECT o.symbol, o.status, o.reject_reason FROM orders o JOIN signals s "
        "ON s.id = o.signal_id WHERE s.run_id = :r AND s.is_exit",
        r=run["id"],
    )
    assert [o["status"] for o in exit_orders] == ["filled", "filled"], exit_orders
    assert one(engine, "SELECT count(*) FROM positions") == 0


def test_frozen_data_pauses_new_orders_until_fresh_data(
    worker, celery_client, engine, sim, clean, calm_market, symbols
):
    run_pipeline(celery_client, engine)
    httpx.post(f"{sim.url}/_sim/faults", json={"mode": "stale"}).raise_for_status()
    time.sleep(11)
    run = run_pipeline(celery_client, engine)
    assert run["status"] == "failed"
    assert one(engine, "SELECT stale_paused FROM portfolios") is True
    assert rows(engine, "SELECT * FROM alerts WHERE code = 'DATA_STALE' AND level = 'WARNING'")

    httpx.delete(f"{sim.url}/_sim/faults").raise_for_status()
    run_pipeline(celery_client, engine)
    assert one(engine, "SELECT stale_paused FROM portfolios") is False


def test_a_bad_stage_payload_is_rejected_once_with_a_stored_reason(
    worker, celery_client, engine, clean
):
    bad = celery_client.send_task(celeryconfig.RISK_TASK, args=["not-a-run-id"]).id
    missing = celery_client.send_task(celeryconfig.SIGNALS_TASK, args=[999999]).id
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        failed = rows(engine, "SELECT * FROM task_runs WHERE state = 'FAILURE'")
        if len(failed) >= 2:
            break
        time.sleep(0.2)
    by_id = {r["task_id"]: r for r in failed}
    assert "invalid stage_message payload" in by_id[bad]["error"]
    assert "run_id='not-a-run-id'" in by_id[bad]["error"]
    assert "does not exist" in by_id[missing]["error"]
    time.sleep(2)  # no retry loop: each ran once
    assert all(r["attempts"] == 1 for r in by_id.values())
    assert one(engine, "SELECT count(*) FROM task_runs") == 2
