"""A stage's done-mark, and what is written with it, count the first time only: a
redelivered or re-run stage keeps the first pass's time and evaluation counts. On both
backends, through the statement the stages run."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session

from app.models import MarketDataRun
from app.services.stages import load_run, mark_done
from tests.conftest import run_row

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(backend_url):
    engine = create_engine(backend_url)
    yield engine
    engine.dispose()


def _run(engine, key: str) -> int:
    with engine.begin() as conn:
        statement = insert(MarketDataRun.__table__).returning(MarketDataRun.id)
        return conn.execute(statement, run_row(key, T0)).scalar()


def _mark(engine, run_id: int, when: datetime, **first) -> str | None:
    with Session(engine) as session, session.begin():
        return mark_done(session, load_run(session, run_id), "signals", when, **first)


def _stored(engine, run_id: int):
    with engine.connect() as conn:
        return conn.execute(
            select(MarketDataRun.signals_done_at, MarketDataRun.evaluation_counts).where(
                MarketDataRun.id == run_id
            )
        ).one()


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite keeps no offset


def test_the_first_pass_mark_and_counts_stay(engine):
    run_id = _run(engine, "r1")
    assert _mark(engine, run_id, T0, evaluation_counts={"hold": 9, "buy": 1}) == "risk"
    later = T0 + timedelta(minutes=5)
    assert _mark(engine, run_id, later, evaluation_counts={"hold": 10}) == "risk"
    done_at, counts = _stored(engine, run_id)
    assert _utc(done_at) == T0 and counts == {"hold": 9, "buy": 1}


def test_counts_written_after_a_mark_without_them(engine):
    """A stale run is marked without counts; a later pass that has them still stores them
    (and keeps the first mark)."""
    run_id = _run(engine, "r2")
    _mark(engine, run_id, T0)
    assert _stored(engine, run_id) == (_stored(engine, run_id)[0], None)
    _mark(engine, run_id, T0 + timedelta(seconds=30), evaluation_counts={"stale_run": 4})
    done_at, counts = _stored(engine, run_id)
    assert _utc(done_at) == T0 and counts == {"stale_run": 4}


def test_other_runs_are_left_alone(engine):
    first, second = _run(engine, "r3"), _run(engine, "r4")
    _mark(engine, first, T0, evaluation_counts={"hold": 1})
    assert _stored(engine, second) == (None, None)
