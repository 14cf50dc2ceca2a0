"""/metrics on PostgreSQL: HTTP metrics plus cdb_ figures that match the rows in the database,
the stage-latency aggregate that record_end keeps, and migration 0003's backfill."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

import celeryconfig
from app import create_app, migrate
from app.config import load_settings
from app.extensions import db
from app.models import (
    AlertRecord,
    Base,
    EquitySnapshot,
    FillRecord,
    MarketDataRun,
    Order,
    Portfolio,
    PositionRecord,
    RiskDecisionRecord,
    SignalRecord,
    TaskRun,
    TickerSnapshot,
)
from app.services import counters, metrics, task_runs
from app.services.market_view import rebuild_latest
from app.web import health
from tests.conftest import REDIS_URL, create_database, drop_database

pytestmark = pytest.mark.integration

D = Decimal


def wipe(engine) -> None:
    tables = ", ".join(Base.metadata.tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def wiped(engine):
    wipe(engine)
    return engine


def make_app(database_url: str, **overrides):
    # The global db keeps this thread's session across create_app() calls; an earlier
    # test's session would still point at its (maybe dropped) database.
    db.dispose()
    settings = load_settings(
        env_file=None, database_url=database_url, **{"redis_url": REDIS_URL, **overrides}
    )
    app = create_app(settings)
    app.testing = True
    # A test app's health thread ends soon after its last request (120 s in production).
    app.extensions[health.MONITOR_KEY].idle = 5
    return app


@pytest.fixture
def app(pg_url, wiped, tmp_path):
    app = make_app(pg_url, state_dir=str(tmp_path))
    yield app
    app.extensions["celery"].close()


def _run(session: Session, now: datetime, status: str = "ok", trigger: str = "beat") -> int:
    run = MarketDataRun(
        run_key=str(uuid.uuid4()),
        trigger=trigger,
        status=status,
        started_at=now,
        finished_at=now,
        parameters={},
        screened_symbols=[],
        stored_symbols=[],
        rejections=[],
        retries=[],
    )
    session.add(run)
    session.flush()
    return run.id


def _ticker(session: Session, run_id: int, symbol: str, price: str, close_time: datetime) -> None:
    session.add(
        TickerSnapshot(
            run_id=run_id, symbol=symbol, last_price=D(price), close_time=close_time, screened=True
        )
    )
    session.flush()
    rebuild_latest(session)  # latest_tickers and the run's data time, as the stage keeps them


def _signal(
    session: Session,
    run_id: int,
    symbol: str,
    direction: str,
    now: datetime,
    *,
    approved: bool,
    rejected_by: str | None = None,
) -> tuple[SignalRecord, RiskDecisionRecord]:
    signal = SignalRecord(
        run_id=run_id,
        symbol=symbol,
        strategy="momentum",
        direction=direction,
        size=D("25"),
        signal_strength=D("0.8"),
        price=D("100"),
        is_exit=direction == "SELL",
        reason=f"test {direction} {symbol}",
        timestamp=now,
    )
    session.add(signal)
    session.flush()
    verdicts = [
        {"layer": n, "name": f"layer{n}", "passed": True, "action": "pass", "values": {"x": "1"}}
        for n in range(1, 7)
    ]
    if rejected_by:
        verdicts[3] = {
            "layer": 4,
            "name": rejected_by,
            "passed": False,
            "action": "block",
            "values": {"exposure_pct": "0.61", "limit": "0.50"},
        }
    decision = RiskDecisionRecord(
        signal_id=signal.id,
        approved=approved,
        size=D("25") if approved else D("0"),
        rejected_by=rejected_by,
        verdicts=verdicts,
        decided_at=now,
    )
    session.add(decision)
    session.flush()
    return signal, decision


def _order(
    session: Session,
    portfolio_id: int,
    signal: SignalRecord,
    decision: RiskDecisionRecord,
    status: str,
    now: datetime,
) -> Order:
    order = Order(
        client_order_id=f"cdb-{signal.id}",
        portfolio_id=portfolio_id,
        run_id=signal.run_id,
        signal_id=signal.id,
        decision_id=decision.id,
        symbol=signal.symbol,
        side=signal.direction,
        size=signal.size,
        est_price=signal.price,
        status=status,
        approved_by=[1, 2, 3, 4, 5, 6],
        risk_checks=[],
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    session.flush()
    return order


def seed(now: datetime) -> dict[str, int]:
    """A small, known world: equity 950 = cash 900 + 0.01 BTC at 5000; one filled BUY, one new
    SELL; two rejections (exposure, data_staleness); three alerts; runs ok and failed."""
    with db.transaction() as session:
        portfolio = Portfolio(
            name="default",
            initial_capital=D("1000"),
            cash=D("900"),
            realized_pnl=D("0"),
            fees_paid=D("0.05"),
            day=now.date(),
            day_start_equity=D("1000"),
            halted=True,
            halt_reason="test halt",
            halted_at=now,
            updated_at=now,
        )
        session.add(portfolio)
        session.flush()
        session.add(
            PositionRecord(
                portfolio_id=portfolio.id,
                symbol="BTCUSDT",
                qty=D("0.01"),
                avg_entry=D("5100"),
                last_price=D("4000"),
                stop_price=D("4998"),
                opened_at=now,
                updated_at=now,
            )
        )
        run_id = _run(session, now - timedelta(seconds=12))
        _run(session, now - timedelta(seconds=30), status="failed")
        _ticker(session, run_id, "BTCUSDT", "5000", now - timedelta(seconds=12))
        buy, buy_decision = _signal(session, run_id, "BTCUSDT", "BUY", now, approved=True)
        sell, sell_decision = _signal(session, run_id, "ETHUSDT", "SELL", now, approved=True)
        _signal(session, run_id, "XRPUSDT", "BUY", now, approved=False, rejected_by="exposure")
        _signal(
            session, run_id, "SOLUSDT", "BUY", now, approved=False, rejected_by="data_staleness"
        )
        filled = _order(session, portfolio.id, buy, buy_decision, "filled", now)
        _order(session, portfolio.id, sell, sell_decision, "new", now)
        session.add(
            FillRecord(
                order_id=filled.id,
                symbol="BTCUSDT",
                side="BUY",
                qty=D("0.01"),
                price=D("5100"),
                notional=D("51"),
                fee=D("0.05"),
                slippage_pct=D("0.001"),
                realized_pnl=D("-0.05"),
                filled_at=now,
            )
        )
        for code, level in (
            ("RISK_LIMIT", "CRITICAL"),
            ("RISK_LIMIT", "CRITICAL"),
            ("DATA_STALE", "WARNING"),
        ):
            session.add(
                AlertRecord(
                    code=code,
                    level=level,
                    message=f"{code} test",
                    source="risk",
                    created_at=now,
                    run_id=run_id,
                )
            )
        for hours, equity in ((30, "1010"), (2, "990"), (1, "950")):
            session.add(
                EquitySnapshot(
                    portfolio_id=portfolio.id,
                    run_id=None,
                    equity=D(equity),
                    cash=D("900"),
                    exposure=D(equity) - D("900"),
                    drawdown_pct=D("0"),
                    daily_pnl=D(equity) - D("1000"),
                    taken_at=now - timedelta(hours=hours),
                )
            )
        session.flush()
        counters.rebuild(session)  # the running totals /metrics reads, as the services keep them
        return {"run_id": run_id, "order_id": filled.id}


def scrape(client) -> dict[str, list]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    families = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        families[family.name] = family.samples
    return families


def value(families, name: str, sample: str | None = None, **labels: str) -> float:
    matching = [
        s
        for s in families[name]
        if s.name == (sample or name) and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(matching) == 1, (name, labels, families[name])
    return matching[0].value


def test_metrics_parse_and_hold_http_and_pipeline_figures(app):
    seed(datetime.now(UTC))
    client = app.test_client()
    assert client.get("/health/live").status_code == 200
    families = scrape(client)

    assert value(families, "flask_http_request", "flask_http_request_total", status="200") >= 1
    assert "flask_http_request_duration_seconds" in families

    assert value(families, "cdb_database_up") == 1
    assert value(families, "cdb_cash") == 900
    assert value(families, "cdb_exposure") == 50  # 0.01 BTC at the newest ticker, 5000
    assert value(families, "cdb_equity") == 950
    assert value(families, "cdb_daily_drawdown_pct") == pytest.approx(0.05)
    assert value(families, "cdb_exposure_pct") == pytest.approx(50 / 950, abs=1e-6)
    assert value(families, "cdb_daily_pnl") == -50
    assert value(families, "cdb_halted") == 1
    assert value(families, "cdb_paused") == 0
    assert value(families, "cdb_open_positions") == 1
    assert value(families, "cdb_position_value", symbol="BTCUSDT") == 50
    assert value(families, "cdb_max_daily_drawdown_pct") == 0.05

    orders = "cdb_orders", "cdb_orders_total"
    assert value(families, *orders, side="BUY", status="filled") == 1
    assert value(families, *orders, side="SELL", status="new") == 1
    assert value(families, "cdb_fills", "cdb_fills_total", side="BUY") == 1
    assert "SELL" not in {s.labels["side"] for s in families["cdb_fills"]}
    rejections = {
        s.labels["layer"]: s.value
        for s in families["cdb_risk_rejections"]
        if s.name == "cdb_risk_rejections_total"
    }
    assert rejections == {"exposure": 1, "data_staleness": 1}
    assert (
        value(families, "cdb_alerts", "cdb_alerts_total", code="RISK_LIMIT", level="CRITICAL") == 2
    )
    assert (
        value(families, "cdb_alerts", "cdb_alerts_total", code="DATA_STALE", level="WARNING") == 1
    )
    assert value(families, "cdb_market_data_runs", status="ok") == 1
    assert value(families, "cdb_market_data_runs", status="failed") == 1
    assert 11 <= value(families, "cdb_market_data_age_seconds") < 20


def _task_run(name: str, started_at: datetime) -> str:
    task_id = str(uuid.uuid4())
    with db.transaction() as session:
        session.add(
            TaskRun(
                task_id=task_id,
                name=name,
                args=[1],
                kwargs={},
                state="STARTED",
                started_at=started_at,
            )
        )
    return task_id


def test_stage_latency_histogram_counts_each_finished_run_once(app):
    now = datetime.now(UTC)
    slow = _task_run(celeryconfig.MARKET_DATA_TASK, now - timedelta(seconds=1.5))
    quick = _task_run(celeryconfig.SIGNALS_TASK, now - timedelta(seconds=0.2))
    other = _task_run(celeryconfig.REFRESH_MARKETS_TASK, now - timedelta(seconds=0.2))
    # Celery reports a failure twice (task_failure, then task_postrun): counted once.
    task_runs.record_end(db, slow, "FAILURE", error="ValueError: boom", traceback="...")
    task_runs.record_end(db, slow, "FAILURE")
    task_runs.record_end(db, quick, "SUCCESS", result=7)
    task_runs.record_end(db, other, "SUCCESS")

    families = scrape(app.test_client())
    name = "cdb_stage_latency_seconds"

    def bucket(stage: str, le: str) -> float:
        return value(families, name, f"{name}_bucket", stage=stage, le=le)

    assert value(families, name, f"{name}_count", stage="market_data") == 1
    assert 1.5 <= value(families, name, f"{name}_sum", stage="market_data") < 2.5
    assert bucket("market_data", "1.0") == 0
    assert bucket("market_data", "2.5") == 1
    assert bucket("market_data", "+Inf") == 1
    assert bucket("signals", "0.1") == 0
    assert bucket("signals", "0.5") == 1
    assert bucket("signals", "180.0") == bucket("market_data", "180.0") == 1  # cumulative
    assert value(families, name, f"{name}_count", stage="risk") == 0
    assert {s.labels["stage"] for s in families[name]} == {
        "market_data",
        "signals",
        "risk",
        "execution",
    }


def test_migration_0007_turns_cumulative_buckets_into_per_bucket_counts_and_back():
    url = create_database("buckets" + uuid.uuid4().hex[:6])
    engine = create_engine(url)
    # risk: 3 runs <= 50 ms, 1 in (250, 500], 2 in (1000, 2500]; execution: 1 in (50, 100]
    cumulative = {
        ("risk", le_ms): count
        for le_ms, count in zip(metrics.LATENCY_BUCKETS_MS, [3, 3, 3, 4, 4] + [6] * 7, strict=True)
    } | {("execution", le_ms): 1 for le_ms in metrics.LATENCY_BUCKETS_MS[1:]}

    def stored() -> dict[tuple[str, int], int]:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT stage, le_ms, count FROM stage_latency_buckets"))
            return {(stage, le_ms): count for stage, le_ms, count in rows}

    try:
        migrate.upgrade(url, "0006")
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO stage_latency_buckets VALUES (:s, :le, :n)"),
                [{"s": s, "le": le, "n": n} for (s, le), n in cumulative.items()],
            )
        migrate.upgrade(url, "0007")
        assert stored() == {
            ("risk", 50): 3,
            ("risk", 500): 1,
            ("risk", 2500): 2,
            ("execution", 100): 1,
        }
        migrate.downgrade(url, "0006")
        assert stored() == cumulative
    finally:
        engine.dispose()
        drop_database(url)


def test_many_apps_in_one_process_each_export_their_own_http_metrics(pg_url, wiped, tmp_path):
    apps = [make_app(pg_url, state_dir=str(tmp_path)) for _ in range(3)]
    for count, app in enumerate(apps, start=1):
        client = app.test_client()
        for _ in range(count):
            client.get("/health/live")
        families = scrape(client)
        assert value(families, "flask_http_request", "flask_http_request_total", status="200") == (
            count
        )
        app.extensions["celery"].close()


def test_metrics_still_answer_when_the_database_is_down(tmp_path):
    app = make_app("postgresql://postgres@127.0.0.1:1/nothing", state_dir=str(tmp_path))
    families = scrape(app.test_client())
    assert value(families, "cdb_database_up") == 0
    assert "flask_http_request_duration_seconds" in families
    app.extensions["celery"].close()


def test_migration_0003_backfills_the_latency_aggregate():
    url = create_database("backfill" + uuid.uuid4().hex[:6])
    engine = create_engine(url)
    try:
        migrate.upgrade(url, "0002")
        rows = [
            (celeryconfig.RISK_TASK, 40),
            (celeryconfig.RISK_TASK, 700),
            (celeryconfig.RISK_TASK, None),  # still running: not counted
            (celeryconfig.REFRESH_MARKETS_TASK, 10),  # not a pipeline stage
        ]
        with engine.begin() as conn:
            for name, runtime in rows:
                conn.execute(
                    text(
                        "INSERT INTO task_runs (task_id, name, args, kwargs, state, started_at, "
                        "runtime_ms, attempts) VALUES (:id, :name, '[]', '{}', 'SUCCESS', now(), "
                        ":runtime, 1)"
                    ),
                    {"id": str(uuid.uuid4()), "name": name, "runtime": runtime},
                )
        migrate.upgrade(url, "0006")  # cumulative buckets until 0007
        with engine.connect() as conn:
            totals = conn.execute(text("SELECT stage, count, sum_ms FROM stage_latency_totals"))
            buckets = dict(
                conn.execute(
                    text("SELECT le_ms, count FROM stage_latency_buckets WHERE stage = 'risk'")
                ).all()
            )
            assert [tuple(r) for r in totals] == [("risk", 2, 740)]
        assert buckets[50] == 1 and buckets[500] == 1 and buckets[1000] == 2
        assert buckets[180000] == 2
    finally:
        engine.dispose()
        drop_database(url)
