"""What every pipeline stage does first with the run id it was handed, and how it hands on.

Each later stage marks its run when its work is committed (`mark_done`, in the stage's own
transaction, which also says whether the next stage's mark is still missing); a stage that
ran — first time, redelivered or re-run by hand — sends the next one after its commit
whenever that mark was missing. The mark is read in the same transaction: a read that is a
moment old can only see a mark missing that was just set, which sends a harmless repeat
(every stage is idempotent by its keys), never skip a hand-off.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Row, Update, bindparam, func, select, update
from sqlalchemy.orm import Session

from app.events import validate
from app.models import MarketDataRun
from app.models.runs import STAGE_MARKS

STAGES = ("market_data", "signals", "risk", "execution")
NEXT = {"market_data": "signals", "signals": "risk", "risk": "execution"}


class UnknownRunError(LookupError):
    """The stage was asked to work on a market-data run that does not exist."""


def check_stage_message(run_id: object) -> None:
    """Reject a malformed stage message (raises app.events.PayloadError)."""
    validate("stage_message", {"run_id": run_id})


# What a stage reads of its run: its times, what it stored and refused, and the marks (the
# screened list, parameters and retries can be long, and no stage needs them). Built once:
# these run in every stage.
_LOAD_RUN = select(
    MarketDataRun.id,
    MarketDataRun.started_at,
    MarketDataRun.finished_at,
    MarketDataRun.stored_symbols,
    MarketDataRun.rejections,
    *(getattr(MarketDataRun, mark) for mark in STAGE_MARKS.values()),
).where(MarketDataRun.id == bindparam("run_id"))
_RUNS = MarketDataRun.__table__
_MARK_DONE = {
    stage: update(_RUNS)
    .where(_RUNS.c.id == bindparam("run_id"), _RUNS.c[mark].is_(None))
    .values({mark: bindparam("now")})
    for stage, mark in STAGE_MARKS.items()
}


@cache
def _mark_done_with(stage: str, columns: tuple[str, ...]) -> Update:
    def first(column: Any, name: str) -> Any:
        return func.coalesce(column, bindparam(name, type_=column.type))

    mark = _RUNS.c[STAGE_MARKS[stage]]
    values = {mark: first(mark, "now"), **{_RUNS.c[c]: first(_RUNS.c[c], c) for c in columns}}
    return update(_RUNS).where(_RUNS.c.id == bindparam("run_id")).values(values)


def load_run(session: Session, run_id: int) -> Row[Any]:
    """The run's row as a stage needs it (attributes named as on MarketDataRun)."""
    run = session.connection().execute(_LOAD_RUN, {"run_id": run_id}).first()
    if run is None:
        raise UnknownRunError(f"market-data run {run_id} does not exist")
    return run


def mark_done(session: Session, run: Any, stage: str, now: datetime, **first: Any) -> str | None:
    """Record that `stage` finished its work for the run (the first time counts); returns the
    stage to send next when its work for the run is not done yet, else None. `first`: other
    columns of the run, set in the same statement where they are still empty."""
    if first:
        statement = _mark_done_with(stage, tuple(first))
        session.execute(statement, {"run_id": run.id, "now": now, **first})
    else:
        session.execute(_MARK_DONE[stage], {"run_id": run.id, "now": now})
    following = NEXT.get(stage)
    if following is None or getattr(run, STAGE_MARKS[following]) is not None:
        return None
    return following


def data_time(run: Any) -> datetime:
    """When the run's market data was current: when the run finished fetching it."""
    return run.finished_at or run.started_at


def run_age(run: Any, now: datetime) -> timedelta:
    return now - data_time(run)


def too_old(run: Any, now: datetime, limit_sec: int) -> bool:
    """A run whose data is older than DATA_STALE_TIMEOUT_SEC: nothing is decided or filled
    from it any more (a late redelivery must not trade on old prices)."""
    return run_age(run, now) > timedelta(seconds=limit_sec)
