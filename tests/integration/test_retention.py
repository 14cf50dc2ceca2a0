"""Retention prunes what has served its purpose in batches, and never the books."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from app import create_app
from app.config import load_settings
from app.extensions import db
from app.models import (
    BookSnapshot,
    EquitySnapshot,
    Evaluation,
    Kline,
    MarketDataRun,
    Portfolio,
    SignalRecord,
    TaskRun,
    TickerSnapshot,
    UniverseSnapshot,
)
from app.services import counters, retention
from app.services.market_view import rebuild_latest

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def database(backend_url):
    settings = load_settings(
        env_file=None,
        database_url=backend_url,
        retention_snapshot_days="7",
        retention_task_runs_days="7",
        retention_evaluations_days="30",
        retention_universe_hours="24",
        retention_book_hours="24",
    )
    create_app(settings)
    yield settings
    db.dispose()


def _run(session, at: datetime, *, signal: bool) -> int:
    run = MarketDataRun(
        run_key=str(uuid.uuid4()),
        trigger="beat",
        status="ok",
        started_at=at,
        finished_at=at,
        parameters={},
        screened_symbols=["AUSDT"],
        stored_symbols=["AUSDT"],
        rejections=[],
        retries=[],
        execution_done_at=at,
    )
    session.add(run)
    session.flush()
    session.add(TickerSnapshot(run_id=run.id, symbol="AUSDT", last_price=D("1"), close_time=at))
    session.add(UniverseSnapshot(run_id=run.id, taken_at=at, symbols=1, data=b"x"))
    session.add(
        BookSnapshot(
            run_id=run.id,
            symbol="AUSDT",
            best_bid=D(1),
            best_ask=D(1),
            bids=[["1", "1"]],
            asks=[["1", "1"]],
            fetched_at=at,
        )
    )
    verdicts = {"AUSDT": "buy" if signal else "below_threshold", "BUSDT": "not_fetched"}
    for symbol, outcome in verdicts.items():
        session.add(
            Evaluation(
                run_id=run.id,
                symbol=symbol,
                strategy="momentum",
                outcome=outcome,
                reason="r",
                values={},
                evaluated_at=at,
            )
        )
    session.add(
        Kline(
            symbol="AUSDT",
            interval="1m",
            open_time=at,
            open=D(1),
            high=D(1),
            low=D(1),
            close=D(1),
            volume=D(1),
            close_time=at + timedelta(minutes=1),
            run_id=run.id,
        )
    )
    if signal:
        session.add(
            SignalRecord(
                run_id=run.id,
                symbol="AUSDT",
                strategy="momentum",
                direction="BUY",
                size=D(1),
                signal_strength=D("0.5"),
                price=D(1),
                is_exit=False,
                reason="r",
                timestamp=at,
            )
        )
    session.add(
        TaskRun(
            task_id=str(uuid.uuid4()),
            name="cdb.signals.run",
            args=[run.id],
            kwargs={},
            state="SUCCESS",
            started_at=at,
        )
    )
    return run.id


def test_old_quiet_data_goes_and_the_books_stay(database):
    settings = database
    with db.transaction() as session:
        account = Portfolio(
            name="paper-1",
            active=True,
            initial_capital=D(1000),
            cash=D(1000),
            realized_pnl=D(0),
            fees_paid=D(0),
            day=NOW.date(),
            day_start_equity=D(1000),
            updated_at=NOW,
        )
        session.add(account)
        session.flush()
        old, recent, traded = [], [], []
        # Ten days ago: a run every 15 minutes for 3 hours, one of them with a signal.
        for i in range(12):
            at = NOW - timedelta(days=10) + timedelta(minutes=15 * i)
            run_id = _run(session, at, signal=i == 5)
            (traded if i == 5 else old).append(run_id)
            session.add(
                EquitySnapshot(
                    portfolio_id=account.id,
                    run_id=run_id,
                    equity=D(1000 + i),
                    cash=D(1000),
                    exposure=D(0),
                    drawdown_pct=D(0),
                    daily_pnl=D(0),
                    taken_at=at,
                )
            )
        for i in range(4):  # an hour ago
            recent.append(_run(session, NOW - timedelta(minutes=60 - 10 * i), signal=False))
        two_days_ago = _run(session, NOW - timedelta(days=2), signal=False)
        rebuild_latest(session)
        counters.rebuild(session)

    result = retention.prune(db, settings, lambda: NOW)
    assert result.finished

    with db.transaction() as session:
        runs = set(session.scalars(select(MarketDataRun.id)))
        # quiet old runs are gone, the run with a signal and the recent ones stay
        assert runs == {*traded, *recent, two_days_ago}
        assert session.scalar(select(func.count()).select_from(SignalRecord)) == 1
        kept = session.execute(select(Evaluation.run_id, Evaluation.outcome)).all()
        verdicts = [run_id for run_id, outcome in kept if outcome != "not_fetched"]
        assert sorted(verdicts) == sorted([*traded, *recent, two_days_ago])
        # a would-be trade whose book was not fetched goes with the universe history it was
        # judged from (24 hours), not with the other verdicts (30 days)
        unfetched = [run_id for run_id, outcome in kept if outcome == "not_fetched"]
        assert sorted(unfetched) == sorted(recent)
        # snapshots, candles and task runs of ten days ago are gone, the recent ones stay;
        # order books go after a day, tickers after a week, the universe after 24 hours
        tickers = set(session.scalars(select(TickerSnapshot.run_id)))
        assert tickers == {*recent, two_days_ago}
        assert set(session.scalars(select(BookSnapshot.run_id))) == set(recent)
        assert set(session.scalars(select(UniverseSnapshot.run_id))) == set(recent)
        assert session.scalar(select(func.count()).select_from(Kline)) == len(recent) + 1
        assert session.scalar(select(func.count()).select_from(TaskRun)) == len(recent) + 1
        # equity: the last snapshot of each hour of ten days ago
        equity = session.scalars(select(EquitySnapshot).order_by(EquitySnapshot.taken_at)).all()
        assert [e.equity for e in equity] == [D(1003), D(1007), D(1011)]
        assert all(e.run_id is None for e in equity)
        # the running totals still agree with the tables
        assert counters.read(session) == counters.counts(session)

    # Nothing more to do: a second pass deletes nothing.
    again = retention.prune(db, settings, lambda: NOW)
    assert again.rows == {}
