"""The market-data stage as it runs: a real Celery worker on Redis, the simulator, PostgreSQL."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

import celeryconfig
from app.services.market_data import kline_limit
from tests.integration.conftest import wait_for_run

pytestmark = pytest.mark.integration

TOP_N = 5


def send(celery, task_id: str | None = None) -> str:
    task_id = task_id or str(uuid.uuid4())
    celery.send_task(celeryconfig.MARKET_DATA_TASK, kwargs={"trigger": "manual"}, task_id=task_id)
    return task_id


def count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def fault(sim, **spec) -> None:
    httpx.post(f"{sim.url}/_sim/faults", json=spec).raise_for_status()


def requests_to(sim, path: str) -> int:
    log = httpx.get(f"{sim.url}/_sim/requests").json()
    return log["by_path"].get(path, 0)


def test_worker_fetches_screens_and_stores_a_run(worker, celery_client, engine, sim, clean):
    run = wait_for_run(engine, send(celery_client))

    assert run["status"] == "ok", run
    assert run["trigger"] == "manual"
    assert len(run["screened_symbols"]) == TOP_N
    assert run["stored_symbols"] == run["screened_symbols"]
    assert run["rejections"] == [] and run["error"] is None
    assert run["tickers_received"] > run["universe_size"] > TOP_N
    assert count(engine, "SELECT count(*) FROM markets") == run["tickers_received"]
    # Full ticker rows for the selected symbols; every eligible pair's price in one
    # compressed universe snapshot.
    snapshots = count(
        engine, "SELECT count(*) FROM ticker_snapshots WHERE run_id = :r", r=run["id"]
    )
    assert snapshots == TOP_N
    universe = count(
        engine, "SELECT symbols FROM universe_snapshots WHERE run_id = :r", r=run["id"]
    )
    assert universe == run["universe_size"]
    latest = count(engine, "SELECT count(*) FROM latest_tickers WHERE run_id = :r", r=run["id"])
    assert latest == TOP_N
    assert count(engine, "SELECT count(*) FROM book_snapshots") == TOP_N
    per_symbol = kline_limit("1m", 15)
    assert count(engine, "SELECT count(*) FROM klines") == TOP_N * per_symbol

    # The stored closed candles are exactly what MEXC (the simulator) serves.
    symbol = run["stored_symbols"][0]
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT open_time, open, high, low, close, volume FROM klines "
                "WHERE symbol = :s ORDER BY open_time LIMIT 3"
            ),
            {"s": symbol},
        ).all()
    start_ms = int(rows[0].open_time.timestamp() * 1000)
    served = httpx.get(
        f"{sim.url}/api/v3/klines",
        params={"symbol": symbol, "interval": "1m", "startTime": start_ms, "limit": 3},
    ).json()
    for row, kline in zip(rows, served, strict=True):
        assert int(row.open_time.timestamp() * 1000) == kline[0]
        assert [row.open, row.high, row.low, row.close, row.volume] == [
            Decimal(v) for v in kline[1:6]
        ]


def test_redelivered_task_finds_its_run_and_stores_nothing_twice(
    worker, celery_client, engine, clean
):
    task_id = send(celery_client)
    first = wait_for_run(engine, task_id)
    rows = count(engine, "SELECT count(*) FROM ticker_snapshots")
    ticker_requests = count(engine, "SELECT count(*) FROM market_data_runs")

    send(celery_client, task_id)  # same id: what a redelivery or manual re-run looks like
    time.sleep(3)
    assert count(engine, "SELECT count(*) FROM market_data_runs") == ticker_requests == 1
    assert count(engine, "SELECT count(*) FROM ticker_snapshots") == rows
    again = wait_for_run(engine, task_id)
    assert again["id"] == first["id"] and again["attempts"] == 1
    assert any("reused" in line or "succeeded" in line for line in worker.lines)


def test_rate_limit_is_retried_and_recorded(worker, celery_client, engine, sim, clean):
    fault(sim, mode="rate_limit", count=2, retry_after=1, path="/api/v3/ticker/24hr")
    before = requests_to(sim, "/api/v3/ticker/24hr")
    run = wait_for_run(engine, send(celery_client))

    assert run["status"] == "ok", run
    assert requests_to(sim, "/api/v3/ticker/24hr") - before == 3
    limited = [r for r in run["retries"] if r["error"] == "RateLimitedError"]
    assert len(limited) == 2
    assert all(r["delay"] >= 1 for r in limited)


def test_server_errors_and_timeouts_are_retried(worker, celery_client, engine, sim, clean):
    fault(sim, mode="server_error", status=503, count=2, path="/api/v3/klines")
    fault(sim, mode="timeout", delay=4, count=1, path="/api/v3/depth")
    run = wait_for_run(engine, send(celery_client))

    assert run["status"] == "ok", run
    errors = sorted(r["error"] for r in run["retries"])
    assert errors.count("ExchangeUnavailableError") == 2
    assert errors.count("ExchangeTimeoutError") == 1
    assert count(engine, "SELECT count(*) FROM book_snapshots") == TOP_N


def test_mexc_down_fails_the_run_without_storing_anything(
    worker, celery_client, engine, sim, clean
):
    fault(sim, mode="server_error", status=502, path="/api/v3/ticker/24hr")
    run = wait_for_run(engine, send(celery_client))

    assert run["status"] == "failed"
    assert "ExchangeUnavailableError" in run["error"]
    assert len(run["retries"]) == 3  # MEXC_MAX_RETRIES
    assert count(engine, "SELECT count(*) FROM ticker_snapshots") == 0
    assert count(engine, "SELECT count(*) FROM klines") == 0


def test_malformed_klines_are_rejected_per_symbol(worker, celery_client, engine, sim, clean):
    fault(sim, mode="malformed", path="/api/v3/klines")
    run = wait_for_run(engine, send(celery_client))

    assert run["status"] == "failed"
    assert run["stored_symbols"] == []
    assert len(run["rejections"]) == TOP_N
    assert all("MalformedResponseError" in r["reason"] for r in run["rejections"])
    assert count(engine, "SELECT count(*) FROM klines") == 0
    assert count(engine, "SELECT count(*) FROM book_snapshots") == 0
    # The universe's tickers were good: every price is kept in the run's universe snapshot,
    # the selected symbols' full tickers too.
    assert count(engine, "SELECT symbols FROM universe_snapshots") == run["universe_size"]
    assert count(engine, "SELECT count(*) FROM ticker_snapshots") == TOP_N


def test_beat_triggers_the_market_data_task(start_process, worker, engine, clean):
    beat = start_process("beat", "--loglevel", "INFO")
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            done = count(
                engine,
                "SELECT count(*) FROM market_data_runs WHERE trigger = 'beat' AND status = 'ok'",
            )
            if done >= 2:
                break
            time.sleep(0.5)
        assert done >= 2, beat.output()
    finally:
        beat.stop()


def test_a_crash_inside_a_run_is_recorded_not_left_running(engine, pg_url, sim, clean):
    from datetime import UTC, datetime

    from app.config import load_settings
    from app.extensions import Database
    from app.services.exchange import make_client
    from app.services.market_data import run_market_data

    database = Database()
    database.configure(pg_url)
    settings = load_settings(env_file=None, mexc_base_url=sim.url, min_quote_volume="0")
    calls = []

    def clock():
        calls.append(1)
        if len(calls) == 3:  # after the run is opened, while fetching
            raise RuntimeError("clock broke")
        return datetime.now(UTC)

    with make_client(settings) as client, pytest.raises(RuntimeError, match="clock broke"):
        run_market_data(database, settings, client, run_key="crash-1", trigger="cli", clock=clock)
    database.dispose()
    with engine.connect() as conn:
        status, error = conn.execute(
            text("SELECT status, error FROM market_data_runs WHERE run_key = 'crash-1'")
        ).one()
    assert status == "failed" and "clock broke" in error
