"""Running totals for /metrics, kept in the same transaction as what they count.

Families and their labels (in this order):
    orders            side, status     an order's insert, and every change of its status
    fills             side
    risk_rejections   layer            the first layer that rejected a signal
    alerts            code, level
    market_data_runs  status           a run's insert, and every change of its status
A scrape reads these few rows instead of counting whole tables; `counts` in tests and the
fault suite's audit compares them with the tables themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AlertRecord, Counter, FillRecord, MarketDataRun, Order, RiskDecisionRecord
from app.services.store import increment

FAMILIES = ("orders", "fills", "risk_rejections", "alerts", "market_data_runs")


def labels(**values: str) -> str:
    return ",".join(f"{key}={value}" for key, value in values.items())


def bump(session: Session, family: str, delta: int = 1, **values: str) -> None:
    tally = Tally()
    tally.add(family, delta, **values)
    tally.write(session)


def bump_many(session: Session, family: str, items: Iterable[tuple[dict[str, str], int]]) -> None:
    """Several label sets of one family at once (deltas of the same labels are summed)."""
    tally = Tally()
    for values, delta in items:
        tally.add(family, delta, **values)
    tally.write(session)


class Tally:
    """Bumps gathered while a stage works, written in one statement at its end (inside the
    same transaction as what they count); deltas of the same labels are summed."""

    def __init__(self) -> None:
        self._deltas: dict[tuple[str, str], int] = {}

    def add(self, family: str, delta: int = 1, **values: str) -> None:
        if family not in FAMILIES:
            raise ValueError(f"unknown counter family {family!r}")
        key = (family, labels(**values))
        self._deltas[key] = self._deltas.get(key, 0) + delta

    def order_moved(self, order: Any, old_status: str, new_status: str) -> None:
        self.add("orders", -1, side=order.side, status=old_status)
        self.add("orders", 1, side=order.side, status=new_status)

    def write(self, session: Session) -> None:
        rows = [
            {"family": family, "labels": key, "value": delta}
            for (family, key), delta in self._deltas.items()
            if delta
        ]
        increment(session, Counter, rows, ["family", "labels"])
        self._deltas.clear()


def run_moved(session: Session, old_status: str | None, new_status: str) -> None:
    if old_status == new_status:
        return
    if old_status is not None:
        bump(session, "market_data_runs", -1, status=old_status)
    bump(session, "market_data_runs", 1, status=new_status)


def read(session: Session) -> dict[str, dict[str, int]]:
    """{family: {labels: value}}, zero rows left out."""
    out: dict[str, dict[str, int]] = {family: {} for family in FAMILIES}
    for row in session.scalars(select(Counter)):
        if row.value:
            out.setdefault(row.family, {})[row.labels] = row.value
    return out


def counts(session: Session) -> dict[str, dict[str, int]]:
    """The same figures counted from the tables: what `read` must equal."""
    queries = {
        "orders": select(Order.side, Order.status, func.count()).group_by(Order.side, Order.status),
        "fills": select(FillRecord.side, func.count()).group_by(FillRecord.side),
        "risk_rejections": select(RiskDecisionRecord.rejected_by, func.count())
        .where(RiskDecisionRecord.rejected_by.is_not(None))
        .group_by(RiskDecisionRecord.rejected_by),
        "alerts": select(AlertRecord.code, AlertRecord.level, func.count()).group_by(
            AlertRecord.code, AlertRecord.level
        ),
        "market_data_runs": select(MarketDataRun.status, func.count()).group_by(
            MarketDataRun.status
        ),
    }
    names = {
        "orders": ("side", "status"),
        "fills": ("side",),
        "risk_rejections": ("layer",),
        "alerts": ("code", "level"),
        "market_data_runs": ("status",),
    }
    out: dict[str, dict[str, int]] = {}
    for family, query in queries.items():
        out[family] = {
            labels(**dict(zip(names[family], row[:-1], strict=True))): row[-1]
            for row in session.execute(query)
        }
    return out


def rebuild(session: Session) -> None:
    """Recount every family from the tables (for data written around the services, e.g. a
    restore or a test's own rows)."""
    session.execute(Counter.__table__.delete())
    rows = [
        {"family": family, "labels": key, "value": value}
        for family, values in counts(session).items()
        for key, value in values.items()
    ]
    if rows:
        session.execute(Counter.__table__.insert(), rows)
