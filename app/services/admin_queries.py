"""Read queries of the admin panel and /health that queries.py does not answer.

Lists are paged with LIMIT/OFFSET, fetching one row more than a page to know whether
another page follows, so no page ever counts a whole table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, cast, func, select
from sqlalchemy.orm import Session

from app.models import (
    AlertRecord,
    EquitySnapshot,
    Evaluation,
    FillRecord,
    MarketDataRun,
    OperatorAction,
    Order,
    Portfolio,
    RiskDecisionRecord,
    SignalRecord,
    TaskRun,
)
from app.services.portfolio import active_portfolio_id

PER_PAGE = 50


@dataclass(frozen=True)
class Page:
    items: list[Any]
    number: int  # 1-based
    per_page: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def paginate(session: Session, statement: Select[Any], number: int, per_page: int) -> Page:
    number = max(1, number)
    rows = list(
        session.execute(statement.limit(per_page + 1).offset((number - 1) * per_page)).all()
    )
    return Page(rows[:per_page], number, per_page, len(rows) > per_page)


# Health and dashboard ------------------------------------------------------------------------


def newest_run(session: Session, trigger: str | None = None) -> MarketDataRun | None:
    """The newest market-data run (optionally only those sent by `trigger`, e.g. 'beat')."""
    statement = select(MarketDataRun).order_by(MarketDataRun.started_at.desc()).limit(1)
    if trigger is not None:
        statement = statement.where(MarketDataRun.trigger == trigger)
    return session.scalar(statement)


def _epoch_bucket(session: Session, column: Any, width_sec: int) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.floor(func.extract("epoch", column) / width_sec)
    return cast(func.strftime("%s", column), Integer) // width_sec


def _account(account_id: int | None) -> Any:
    """The account's id, or the active account's (as a subquery) when None."""
    return account_id if account_id is not None else active_portfolio_id()


def _last_per_bucket(
    session: Session, since: datetime, width_sec: int, account_id: int | None = None
) -> list[EquitySnapshot]:
    """The newest equity snapshot of each `width_sec` interval since `since`, oldest first."""
    bucket = _epoch_bucket(session, EquitySnapshot.taken_at, width_sec)
    newest_ids = (
        select(func.max(EquitySnapshot.id))
        .where(
            EquitySnapshot.portfolio_id == _account(account_id), EquitySnapshot.taken_at >= since
        )
        .group_by(bucket)
    )
    return list(
        session.scalars(
            select(EquitySnapshot)
            .where(EquitySnapshot.id.in_(newest_ids))
            .order_by(EquitySnapshot.taken_at)
        )
    )


def _curve(
    session: Session, since: datetime, now: datetime, points: int, account_id: int | None
) -> list[EquitySnapshot]:
    """At most about `points` snapshots from `since` (or the first snapshot after it, so a
    young bot's curve is not one bucket wide) to `now`."""
    first = session.scalar(
        select(func.min(EquitySnapshot.taken_at)).where(
            EquitySnapshot.portfolio_id == _account(account_id), EquitySnapshot.taken_at >= since
        )
    )
    start = max(since, first) if first is not None else since
    width = max(1, math.ceil((now - start).total_seconds() / points))
    return _last_per_bucket(session, since, width, account_id)


def equity_curve(
    session: Session,
    since: datetime,
    now: datetime,
    points: int = 300,
    account_id: int | None = None,
) -> list[tuple[datetime, Decimal]]:
    """(time, equity) of the account (default: the active one), at most about `points`."""
    return [(s.taken_at, s.equity) for s in _curve(session, since, now, points, account_id)]


def drawdown_curve(
    session: Session,
    since: datetime,
    now: datetime,
    points: int = 300,
    account_id: int | None = None,
) -> list[tuple[datetime, Decimal]]:
    """(time, the day's drawdown as a fraction) of the account, at most about `points`."""
    return [(s.taken_at, s.drawdown_pct) for s in _curve(session, since, now, points, account_id)]


def daily_pnl(
    session: Session, since: datetime, account_id: int | None = None
) -> list[tuple[datetime, Decimal]]:
    """Each UTC day's PnL: the day's last snapshot's equity minus the equity at 00:00."""
    return [(s.taken_at, s.daily_pnl) for s in _last_per_bucket(session, since, 86400, account_id)]


def accounts(session: Session) -> list[Portfolio]:
    """Every paper account, newest first (for choosing one)."""
    return list(session.scalars(select(Portfolio).order_by(Portfolio.id.desc())))


def evaluation(session: Session, run_id: int, symbol: str) -> Evaluation | None:
    """What the strategy made of `symbol` in run `run_id` (for an order's trace)."""
    return session.scalar(
        select(Evaluation).where(Evaluation.run_id == run_id, Evaluation.symbol == symbol)
    )


# Lists -----------------------------------------------------------------------------------


def orders_page(
    session: Session, number: int, per_page: int = PER_PAGE, *, account_id: int | None = None
) -> Page:
    """The account's orders (default: the active account's) with their fills, newest first."""
    statement = (
        select(Order, FillRecord)
        .outerjoin(FillRecord, FillRecord.order_id == Order.id)
        .where(Order.portfolio_id == _account(account_id))
        .order_by(Order.id.desc())
    )
    return paginate(session, statement, number, per_page)


def fills_page(
    session: Session, number: int, per_page: int = PER_PAGE, *, account_id: int | None = None
) -> Page:
    """The account's fills (default: the active account's), each with its order, newest first."""
    statement = (
        select(FillRecord, Order)
        .join(Order, Order.id == FillRecord.order_id)
        .where(Order.portfolio_id == _account(account_id))
        .order_by(FillRecord.id.desc())
    )
    return paginate(session, statement, number, per_page)


def signals_page(session: Session, number: int, per_page: int = PER_PAGE) -> Page:
    """Signals newest first, each with its risk decision and its order (when one was made)."""
    statement = (
        select(SignalRecord, RiskDecisionRecord, Order.id)
        .outerjoin(RiskDecisionRecord, RiskDecisionRecord.signal_id == SignalRecord.id)
        .outerjoin(Order, Order.signal_id == SignalRecord.id)
        .order_by(SignalRecord.id.desc())
    )
    return paginate(session, statement, number, per_page)


def alerts_page(
    session: Session, number: int, open_only: bool = False, per_page: int = PER_PAGE
) -> Page:
    statement = select(AlertRecord).order_by(AlertRecord.id.desc())
    if open_only:
        statement = statement.where(AlertRecord.acknowledged_at.is_(None))
    return paginate(session, statement, number, per_page)


@dataclass(frozen=True)
class TaskFilter:
    name: str | None = None
    state: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def task_runs_page(
    session: Session, wanted: TaskFilter, number: int, per_page: int = PER_PAGE
) -> Page:
    statement = select(TaskRun).order_by(TaskRun.started_at.desc(), TaskRun.id.desc())
    if wanted.name:
        statement = statement.where(TaskRun.name == wanted.name)
    if wanted.state:
        statement = statement.where(TaskRun.state == wanted.state)
    if wanted.since:
        statement = statement.where(TaskRun.started_at >= wanted.since)
    if wanted.until:
        statement = statement.where(TaskRun.started_at < wanted.until)
    return paginate(session, statement, number, per_page)


def task_run(session: Session, task_id: str) -> TaskRun | None:
    return session.scalar(select(TaskRun).where(TaskRun.task_id == task_id))


def operator_actions_page(session: Session, number: int, per_page: int = PER_PAGE) -> Page:
    """The audit trail, panel and CLI alike, newest first."""
    statement = select(OperatorAction).order_by(OperatorAction.id.desc())
    return paginate(session, statement, number, per_page)


def operator_actions(
    session: Session,
    limit: int = 20,
    *,
    action: str | None = None,
    target: str | None = None,
) -> list[OperatorAction]:
    statement = select(OperatorAction).order_by(OperatorAction.id.desc()).limit(limit)
    if action is not None:
        statement = statement.where(OperatorAction.action == action)
    if target is not None:
        statement = statement.where(OperatorAction.target == target)
    return list(session.scalars(statement))
