"""Every online USDT pair is judged every cycle from the all-tickers history; TOP_N only limits
which symbols get their candles and book fetched."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from app import create_app
from app.config import load_settings
from app.exchange.simulator import SimulatorServer
from app.extensions import db
from app.models import Evaluation, MarketDataRun, TickerSnapshot, UniverseSnapshot
from app.services import counters
from app.services.decisions import explain, run_summary
from app.services.exchange import make_client
from app.services.pipeline import run_once
from app.services.store import upsert
from app.services.universe import reference_times, snapshot_of_run

pytestmark = pytest.mark.integration

TOP_N = 3
RALLY = 8  # symbols that rose 10 % over the look-back: more than TOP_N


@pytest.fixture
def stack(empty_pg_url):
    from app import migrate

    migrate.upgrade(empty_pg_url)
    with SimulatorServer(n_symbols=120, seed=21) as sim:
        settings = load_settings(
            env_file=None,
            database_url=empty_pg_url,
            mexc_base_url=sim.url,
            min_quote_volume="0",
            top_n=str(TOP_N),
            lookback_minutes="15",
            interval="1m",
        )
        create_app(settings)
        yield settings
        db.dispose()


def _old_run(session, taken_at: datetime) -> int:
    run = MarketDataRun(
        run_key=f"seed-{uuid.uuid4()}",
        trigger="seed",
        status="ok",
        started_at=taken_at,
        finished_at=taken_at,
        parameters={},
        screened_symbols=[],
        stored_symbols=[],
        rejections=[],
        retries=[],
        signals_done_at=taken_at,
        risk_done_at=taken_at,
        execution_done_at=taken_at,
    )
    session.add(run)
    session.flush()
    return run.id


class _Ticker:
    def __init__(self, symbol: str, price: D) -> None:
        self.symbol, self.last_price = symbol, price


def test_the_whole_universe_is_judged_and_the_top_movers_fetched(stack):
    settings = stack
    from app.services.universe import snapshot_row

    with make_client(settings) as client:
        now = datetime.now(UTC)
        tickers = [t for t in client.tickers_24h() if t.symbol.endswith("USDT") and t.last_price]
        rally = sorted(t.symbol for t in tickers)[:RALLY]
        opened, reference = reference_times(now, "1m", 15)
        # What earlier runs saw: the rally symbols 10 % lower a look-back ago and a little
        # lower at the current candle's open; the rest where they are now.
        with db.transaction() as session:
            for moment, factor in ((reference, D("0.9")), (opened, D("0.999"))):
                run_id = _old_run(session, moment)
                seen = [
                    _Ticker(t.symbol, t.last_price * (factor if t.symbol in rally else 1))
                    for t in tickers
                ]
                upsert(session, UniverseSnapshot, [snapshot_row(run_id, moment, seen)], ["run_id"])
            counters.rebuild(session)  # the seeded runs were written around the services
        result = run_once(db, settings, client, lambda: datetime.now(UTC))

    run_id = result["run_id"]
    with db.transaction() as session:
        run = session.get(MarketDataRun, run_id)
        snapshot = snapshot_of_run(session, run_id)
        counts = run.evaluation_counts
        # every eligible pair was judged, once
        assert sum(counts.values()) == run.universe_size == len(snapshot.prices) > 100
        # the strongest movers got their candles and book, TOP_N of them
        assert len(run.screened_symbols) == TOP_N and set(run.screened_symbols) <= set(rally)
        stored = session.scalar(
            select(func.count()).select_from(TickerSnapshot).where(TickerSnapshot.run_id == run_id)
        )
        assert stored == TOP_N
        # the other rally symbols would have been bought: all counted as "not fetched", the
        # TOP_N with the largest moves kept as rows (the rally's moves tie: by symbol)
        missed = sorted(set(rally) - set(run.screened_symbols))
        not_fetched = set(
            session.scalars(
                select(Evaluation.symbol).where(
                    Evaluation.run_id == run_id, Evaluation.outcome == "not_fetched"
                )
            )
        )
        assert len(missed) == RALLY - TOP_N > TOP_N
        assert not_fetched == set(missed[:TOP_N])
        assert counts["not_fetched"] == RALLY - TOP_N
        # one without a row is judged again from the history, to the same outcome
        dropped = explain(session, missed[-1], runs=1)[0]
        assert dropped.run_id == run_id and dropped.outcome == "not_fetched"
        assert f"not among the TOP_N={TOP_N} fetched" in dropped.reason
        # only the interesting symbols keep a row; the rest are counted
        rows = session.scalar(
            select(func.count()).select_from(Evaluation).where(Evaluation.run_id == run_id)
        )
        assert rows < run.universe_size / 4
        # /metrics' running totals agree with the tables after a whole pass
        assert counters.read(session) == counters.counts(session)
        assert counters.read(session)["market_data_runs"]["status=ok"] >= 1
        summary = run_summary(session, run_id)
        assert summary.text.startswith(f"{run.universe_size} evaluated: ")
        assert f"{RALLY - TOP_N} not fetched" in summary.text

        # A quiet symbol's verdict, judged again from the run's history for `cdb explain`.
        quiet = next(s for s in sorted(snapshot.prices) if s not in rally)
        explained = explain(session, quiet, runs=1)[0]
        assert explained.run_id == run_id and explained.outcome == "below_threshold"
        assert abs(D(explained.values["momentum_pct"])) < D("0.005")
        assert "all-tickers history" in explained.reason


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_refetched_snapshot_is_read_anew_not_from_the_decoded_ones(
    backend, empty_pg_url, tmp_path
):
    """view_at keeps decoded snapshots in the process; a run fetched again writes its row
    anew (a new time), and the view then has the new prices, not the kept ones."""
    from app import migrate
    from app.services.universe import snapshot_row, view_at

    url = empty_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path / 'u.sqlite3'}"
    migrate.upgrade(url)
    create_app(load_settings(env_file=None, database_url=url))
    try:
        now = datetime(2026, 11, 30, 12, 7, 30, tzinfo=UTC)
        opened, _ = reference_times(now, "1m", 15)

        def view() -> dict:
            with db.transaction() as session:
                return dict(view_at(session, now, {}, "1m", 15).candle_open or {})

        def store(taken_at: datetime, price: str) -> None:
            with db.transaction() as session:
                row = snapshot_row(run_id, taken_at, [_Ticker("ETHUSDT", D(price))])
                upsert(session, UniverseSnapshot, [row], ["run_id"])

        with db.transaction() as session:
            run_id = _old_run(session, opened)
        store(opened - timedelta(seconds=2), "100")
        assert view() == {"ETHUSDT": D("100")}
        assert view() == {"ETHUSDT": D("100")}  # the second read is the decoded one
        store(opened - timedelta(seconds=1), "250.5")  # the run fetched again
        assert view() == {"ETHUSDT": D("250.5")}
    finally:
        db.dispose()
