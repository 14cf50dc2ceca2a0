"""What every pipeline stage does first with the run id it was handed, and how it hands on.

Each later stage marks its run when its work is committed (`mark_done`, in the stage's own
transaction); a stage that ran — first time, redelivered or re-run by hand — sends the next
one whenever that one's mark is missing (`next_is_pending`). Repeats are harmless: every
stage is idempotent by its keys.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from app.events import validate
from app.extensions import Database
from app.models import MarketDataRun
from app.models.runs import STAGE_MARKS

STAGES = ("market_data", "signals", "risk", "execution")
NEXT = {"market_data": "signals", "signals": "risk", "risk": "execution"}


class UnknownRunError(LookupError):
    """The stage was asked to work on a market-data run that does not exist."""


def check_stage_message(run_id: object) -> None:
    """Reject a malformed stage message (raises app.events.PayloadError)."""
    validate("stage_message", {"run_id": run_id})


def load_run(session: Session, run_id: int) -> MarketDataRun:
    run = session.get(MarketDataRun, run_id)
    if run is None:
        raise UnknownRunError(f"market-data run {run_id} does not exist")
    return run


def mark_done(session: Session, run_id: int, stage: str, now: datetime) -> None:
    """Record that `stage` finished its work for the run (the first time counts)."""
    column = getattr(MarketDataRun, STAGE_MARKS[stage])
    session.execute(
        update(MarketDataRun)
        .where(MarketDataRun.id == run_id, column.is_(None))
        .values({STAGE_MARKS[stage]: now})
    )


def next_is_pending(db: Database, run_id: int, stage: str) -> str | None:
    """The stage after `stage` when its work for the run is not done yet, else None."""
    following = NEXT.get(stage)
    if following is None:
        return None
    with db.transaction() as session:
        run = session.get(MarketDataRun, run_id)
        if run is None or getattr(run, STAGE_MARKS[following]) is not None:
            return None
    return following


def data_time(run: MarketDataRun) -> datetime:
    """When the run's market data was current: when the run finished fetching it."""
    return run.finished_at or run.started_at


def run_age(run: MarketDataRun, now: datetime) -> timedelta:
    return now - data_time(run)


def too_old(run: MarketDataRun, now: datetime, limit_sec: int) -> bool:
    """A run whose data is older than DATA_STALE_TIMEOUT_SEC: nothing is decided or filled
    from it any more (a late redelivery must not trade on old prices)."""
    return run_age(run, now) > timedelta(seconds=limit_sec)
