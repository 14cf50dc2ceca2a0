"""At-least-once beside exactly-once: find work that stopped and re-drive or expire it.

Keys make a repeat harmless; this makes a loss impossible. Run by beat every
RECONCILE_INTERVAL_SEC (`cdb.maintenance.reconcile`) and by `cdb reconcile`:

1. A market-data run left `running` past the market-data task's hard time limit lost its
   worker: it is failed with that reason (and re-driven below, so risk still sees it).
2. A finished run whose chain stopped — a stage not done a while after the one before it —
   gets that stage's task sent again, with a backoff between re-drives. Every stage is
   idempotent and refuses to act on data older than DATA_STALE_TIMEOUT_SEC, so a late
   re-drive only completes the bookkeeping.
3. An order still `new` once its data is too old to fill is expired with the reason.
4. A task run left STARTED past its hard time limit is marked LOST (its worker died; a
   redelivery that does come later overwrites that); a PENDING one never picked up within
   an hour likewise.

Every change carries its reason: in the run's `chain_note`, the order's `reject_reason`,
the task run's `error`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, case, literal, or_, select, update

import celeryconfig
from app.config import Settings
from app.extensions import Database
from app.models import MarketDataRun, Order, TaskRun
from app.models.runs import STAGE_MARKS
from app.services import counters
from app.services.execution import expire_order
from app.services.portfolio import lock_portfolio
from app.services.stages import NEXT

log = logging.getLogger(__name__)

GRACE = timedelta(seconds=10)  # a stage normally follows the one before it within this
REDRIVE_BACKOFF_MAX = timedelta(minutes=5)
WINDOW = timedelta(hours=6)  # older unfinished chains are given up, with a note
PENDING_LOST_AFTER = timedelta(hours=1)
MARGIN = timedelta(seconds=30)  # beyond a hard time limit before a worker counts as lost


@dataclass
class Report:
    runs_failed: list[int] = field(default_factory=list)
    redriven: list[tuple[int, str]] = field(default_factory=list)
    given_up: list[int] = field(default_factory=list)
    orders_expired: list[int] = field(default_factory=list)
    tasks_lost: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs_failed": self.runs_failed,
            "redriven": [{"run_id": run_id, "stage": stage} for run_id, stage in self.redriven],
            "given_up": self.given_up,
            "orders_expired": self.orders_expired,
            "tasks_lost": self.tasks_lost,
        }

    @property
    def changed(self) -> bool:
        return any(self.as_dict().values())


def reconcile(
    db: Database,
    settings: Settings,
    clock: Callable[[], datetime],
    send: Callable[[str, int], None],
) -> Report:
    """One pass; `send(stage, run_id)` sends that stage's task for the run."""
    report = Report()
    now = clock()
    _fail_lost_runs(db, now, report)
    _redrive_stopped_chains(db, now, send, report)
    _expire_stale_orders(db, settings, now, report)
    _mark_lost_tasks(db, now, report)
    if report.changed:
        log.warning("reconciled", extra=report.as_dict())
    return report


def _fail_lost_runs(db: Database, now: datetime, report: Report) -> None:
    limit = timedelta(seconds=celeryconfig.MARKET_DATA_TIME_LIMIT) + MARGIN
    reason = f"worker lost mid-run: not finished within {limit.total_seconds():.0f} s"
    with db.transaction() as session:
        runs = session.scalars(
            select(MarketDataRun).where(
                MarketDataRun.status == "running", MarketDataRun.started_at < now - limit
            )
        ).all()
        for run in runs:
            counters.run_moved(session, run.status, "failed")
            run.status, run.finished_at = "failed", now
            run.error = f"{reason} (reconciler)"
            run.chain_note = _note(run.chain_note, now, reason + "; failed")
            report.runs_failed.append(run.id)


def _redrive_stopped_chains(
    db: Database, now: datetime, send: Callable[[str, int], None], report: Report
) -> None:
    with db.transaction() as session:
        stopped = session.scalars(
            select(MarketDataRun)
            .where(
                MarketDataRun.status != "running",
                MarketDataRun.execution_done_at.is_(None),
                or_(
                    MarketDataRun.chain_note.is_(None),
                    ~MarketDataRun.chain_note.contains("given up"),
                ),
            )
            .order_by(MarketDataRun.id)
        ).all()
        work = []
        for run in stopped:
            if run.started_at < now - WINDOW:
                run.chain_note = _note(run.chain_note, now, "chain given up: older than 6 h")
                report.given_up.append(run.id)
                continue
            stage, since = _pending_stage(run)
            if since is None or since > now - GRACE:
                continue  # the stage before it just finished: give it time
            wait = min(REDRIVE_BACKOFF_MAX, GRACE * 2 ** min(run.redrives, 10))
            if run.redriven_at is not None and run.redriven_at > now - wait:
                continue
            work.append((run.id, stage, run.redrives))
    for run_id, stage, redrives in work:
        # Claim the re-drive first, so two reconcilers never send it twice.
        with db.transaction() as session:
            claimed = session.execute(
                update(MarketDataRun)
                .where(
                    MarketDataRun.id == run_id,
                    MarketDataRun.redrives == redrives,
                    getattr(MarketDataRun, STAGE_MARKS[stage]).is_(None),
                )
                .values(
                    redrives=redrives + 1,
                    redriven_at=now,
                    chain_note=_note_sql(now, f"{stage} re-driven (#{redrives + 1})"),
                )
            ).rowcount
        if claimed:
            send(stage, run_id)
            report.redriven.append((run_id, stage))


def _pending_stage(run: MarketDataRun) -> tuple[str, datetime | None]:
    """The first stage not done, and since when the stage before it has been done."""
    before = run.finished_at or run.started_at
    stage = "signals"
    while stage is not None:
        done = getattr(run, STAGE_MARKS[stage])
        if done is None:
            return stage, before
        before = done
        stage = NEXT.get(stage)  # type: ignore[assignment]
    return "execution", None


def _expire_stale_orders(db: Database, settings: Settings, now: datetime, report: Report) -> None:
    limit = timedelta(seconds=settings.data_stale_timeout_sec) + GRACE
    with db.transaction() as session:
        if (
            session.scalar(
                select(Order.id)
                .where(Order.status == "new", Order.created_at < now - limit)
                .limit(1)
            )
            is None
        ):
            return
        locked = lock_portfolio(session, settings, now)  # execution holds it while filling
        orders = session.scalars(
            select(Order).where(
                Order.status == "new",
                Order.created_at < now - limit,
                Order.portfolio_id == locked.row.id,
            )
        ).all()
        tally = counters.Tally()
        for order in orders:
            age = (now - order.created_at).total_seconds()
            expire_order(
                tally,
                order,
                f"not filled {age:.0f} s after it was approved (its execution never came; data "
                f"older than DATA_STALE_TIMEOUT_SEC={settings.data_stale_timeout_sec} s is not "
                "filled) (reconciler)",
                now,
            )
            report.orders_expired.append(order.id)
        tally.write(session)


def _mark_lost_tasks(db: Database, now: datetime, report: Report) -> None:
    started_limit = timedelta(seconds=celeryconfig.MARKET_DATA_TIME_LIMIT) + MARGIN
    with db.transaction() as session:
        lost = session.scalars(
            select(TaskRun).where(
                or_(
                    (TaskRun.state == "STARTED") & (TaskRun.started_at < now - started_limit),
                    (TaskRun.state == "PENDING") & (TaskRun.started_at < now - PENDING_LOST_AFTER),
                )
            )
        ).all()
        for run in lost:
            if run.state == "STARTED":
                reason = (
                    f"worker lost: no end recorded within {started_limit.total_seconds():.0f} s "
                    "of its start (reconciler)"
                )
            else:
                reason = "never picked up by a worker within an hour (reconciler)"
            run.state, run.finished_at, run.error = "LOST", now, reason
            report.tasks_lost.append(run.task_id)


def _note(note: str | None, now: datetime, text: str) -> str:
    line = f"{now.isoformat(timespec='seconds')} {text}"
    return line if not note else f"{note}\n{line}"[-4000:]


def _note_sql(now: datetime, text: str) -> ColumnElement[str]:
    """`_note` as SQL, appended in the UPDATE that claims the re-drive."""
    line = literal(f"{now.isoformat(timespec='seconds')} {text}", String)
    return case(
        (MarketDataRun.chain_note.is_(None), line),
        else_=MarketDataRun.chain_note + literal("\n", String) + line,
    )
