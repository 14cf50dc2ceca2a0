"""Storage that stays bounded: prune what has served its purpose, in small batches.

Run by beat every PRUNE_INTERVAL_SEC (`cdb.maintenance.prune`) and by `cdb prune`. Each batch
is its own short transaction (a few thousand rows), so the pipeline never waits long on a
lock, and one pass stops after a time budget (the next pass goes on).

Kept for ever: orders, fills, signals, risk decisions, alerts, operator actions, accounts —
the books and the audit trail — and the market-data runs that produced a signal.
Pruned past their window (settings, see .env.template):
- RETENTION_UNIVERSE_HOURS: the all-tickers history (never less than the look-back), and the
  verdicts of would-be trades whose book was not fetched, judged from it;
- RETENTION_BOOK_HOURS: order book snapshots (50 levels a side, most of a run's bytes);
- RETENTION_SNAPSHOT_DAYS: ticker snapshots, candles, and the runs that made no signal (with
  their verdicts); equity snapshots are thinned to the last of each hour;
- RETENTION_EVALUATIONS_DAYS: verdicts without a signal;
- RETENTION_TASK_RUNS_DAYS: task runs; login attempts and ended admin sessions after 30 days.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, select, update

from app.config import Settings
from app.domain.strategies.base import NOT_FETCHED
from app.extensions import Database
from app.models import (
    AdminSession,
    AlertRecord,
    BookSnapshot,
    EquitySnapshot,
    Evaluation,
    Kline,
    LoginAttempt,
    MarketDataRun,
    Order,
    SignalRecord,
    TaskRun,
    TickerSnapshot,
    UniverseSnapshot,
)
from app.services import counters

log = logging.getLogger(__name__)

BATCH = 2000
TIME_BUDGET_SEC = 20.0  # below the maintenance task's soft time limit
PAUSE_SEC = 0.02  # between batches: let the pipeline's transactions in
SECURITY_LOG_DAYS = 30


@dataclass
class Pruned:
    rows: dict[str, int] = field(default_factory=dict)
    finished: bool = True  # False: the time budget ran out, the next pass continues

    def add(self, table: str, count: int) -> None:
        if count:
            self.rows[table] = self.rows.get(table, 0) + count

    def as_dict(self) -> dict[str, Any]:
        return {"deleted": dict(self.rows), "finished": self.finished}


def prune(
    db: Database,
    settings: Settings,
    clock: Callable[[], datetime],
    budget_sec: float = TIME_BUDGET_SEC,
) -> Pruned:
    """One pass over every table, oldest rows first; returns what was deleted."""
    now = clock()
    deadline = time.monotonic() + budget_sec
    result = Pruned()
    days = timedelta(days=1)
    lookback = timedelta(minutes=settings.lookback_minutes * 2 + 60)
    universe = now - max(timedelta(hours=settings.retention_universe_hours), lookback)
    snapshots = now - settings.retention_snapshot_days * days
    books = now - timedelta(hours=settings.retention_book_hours)
    verdicts = now - settings.retention_evaluations_days * days
    task_runs = now - settings.retention_task_runs_days * days
    security = now - SECURITY_LOG_DAYS * days
    steps: list[tuple[str, Callable[[Any], int]]] = [
        (
            "universe_snapshots",
            _by_age(UniverseSnapshot.run_id, UniverseSnapshot.taken_at, universe),
        ),
        ("ticker_snapshots", _old_run_rows(TickerSnapshot, snapshots)),
        ("book_snapshots", _old_run_rows(BookSnapshot, books)),
        ("klines", _by_age(Kline.id, Kline.open_time, snapshots)),
        # would-be trades whose book was not fetched go with the history they were judged from
        (
            "evaluations",
            _by_age(
                Evaluation.id, Evaluation.evaluated_at, universe, Evaluation.outcome == NOT_FETCHED
            ),
        ),
        ("evaluations", _quiet_evaluations(verdicts)),
        ("task_runs", _by_age(TaskRun.id, TaskRun.started_at, task_runs)),
        ("login_attempts", _by_age(LoginAttempt.id, LoginAttempt.at, security)),
        ("admin_sessions", _by_age(AdminSession.id, AdminSession.expires_at, security)),
        ("equity_snapshots", _thin_equity(snapshots)),
        ("market_data_runs", _quiet_runs(snapshots)),
    ]
    for table, step in steps:
        while True:
            if time.monotonic() > deadline:
                result.finished = False
                log.info("pruning paused: time budget used", extra=result.as_dict())
                return result
            with db.transaction() as session:
                count = step(session)
            result.add(table, count)
            if count < BATCH:
                break
            time.sleep(PAUSE_SEC)
    if result.rows:
        log.info("pruned", extra=result.as_dict())
    return result


def _delete_ids(session: Any, model: type, key: Any, ids: list[Any]) -> int:
    if not ids:
        return 0
    return session.execute(delete(model).where(key.in_(ids))).rowcount or 0


def _by_age(key: Any, when: Any, cutoff: datetime, *only: Any) -> Callable[[Any], int]:
    """Rows of `key`'s table whose `when` is before the cutoff (and that match `only`), the
    oldest first."""
    model = key.class_

    def step(session: Any) -> int:
        older = select(key).where(when < cutoff, *only)
        ids = list(session.scalars(older.order_by(when).limit(BATCH)))
        return _delete_ids(session, model, key, ids)

    return step


def _old_run_rows(model: type, cutoff: datetime) -> Callable[[Any], int]:
    """Rows of runs older than the cutoff (by the run's start), the oldest runs first."""

    def step(session: Any) -> int:
        ids = list(
            session.scalars(
                select(model.id)
                .join(MarketDataRun, MarketDataRun.id == model.run_id)
                .where(MarketDataRun.started_at < cutoff)
                .order_by(model.run_id)
                .limit(BATCH)
            )
        )
        return _delete_ids(session, model, model.id, ids)

    return step


def _quiet_evaluations(cutoff: datetime) -> Callable[[Any], int]:
    """Verdicts older than the cutoff that made no signal (those with one stay with it)."""
    has_signal = exists().where(
        and_(SignalRecord.run_id == Evaluation.run_id, SignalRecord.symbol == Evaluation.symbol)
    )

    def step(session: Any) -> int:
        ids = list(
            session.scalars(
                select(Evaluation.id)
                .where(Evaluation.evaluated_at < cutoff, ~has_signal)
                .order_by(Evaluation.id)
                .limit(BATCH)
            )
        )
        return _delete_ids(session, Evaluation, Evaluation.id, ids)

    return step


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _thin_equity(cutoff: datetime) -> Callable[[Any], int]:
    """Past the cutoff, keep the last equity snapshot of each hour (per account), detached
    from its run (so the run may go, and the snapshot is not looked at again)."""
    fetch = BATCH * 4

    def step(session: Any) -> int:
        rows = session.execute(
            select(EquitySnapshot.id, EquitySnapshot.portfolio_id, EquitySnapshot.taken_at)
            .where(EquitySnapshot.taken_at < cutoff, EquitySnapshot.run_id.is_not(None))
            .order_by(EquitySnapshot.taken_at)
            .limit(fetch)
        ).all()
        if len(rows) == fetch:  # the last hour may go on past the limit: leave it for later
            last = _hour(rows[-1].taken_at)
            rows = [row for row in rows if _hour(row.taken_at) < last]
        newest: dict[tuple[int, datetime], int] = {}
        for row in rows:
            newest[(row.portfolio_id, _hour(row.taken_at))] = row.id
        keep = list(newest.values())
        drop = [row.id for row in rows if row.id not in set(keep)]
        session.execute(
            update(EquitySnapshot).where(EquitySnapshot.id.in_(keep)).values(run_id=None)
        )
        return len(keep) + _delete_ids(session, EquitySnapshot, EquitySnapshot.id, drop)

    return step


def _quiet_runs(cutoff: datetime) -> Callable[[Any], int]:
    """Market-data runs older than the cutoff that produced no signal and no order."""
    has_signal = exists().where(SignalRecord.run_id == MarketDataRun.id)
    has_order = exists().where(Order.run_id == MarketDataRun.id)

    def step(session: Any) -> int:
        runs = session.execute(
            select(MarketDataRun.id, MarketDataRun.status)
            .where(
                MarketDataRun.started_at < cutoff,
                MarketDataRun.status != "running",
                ~has_signal,
                ~has_order,
            )
            .order_by(MarketDataRun.id)
            .limit(BATCH)
        ).all()
        ids = [run.id for run in runs]
        if not ids:
            return 0
        # What still points at them: verdicts go, the rest lets go of the run.
        session.execute(delete(Evaluation).where(Evaluation.run_id.in_(ids)))
        for model in (EquitySnapshot, AlertRecord, Kline):
            session.execute(update(model).where(model.run_id.in_(ids)).values(run_id=None))
        deleted = _delete_ids(session, MarketDataRun, MarketDataRun.id, ids)
        statuses: dict[str, int] = {}
        for run in runs:
            statuses[run.status] = statuses.get(run.status, 0) + 1
        counters.bump_many(
            session, "market_data_runs", (({"status": s}, -n) for s, n in statuses.items())
        )
        return deleted

    return step
