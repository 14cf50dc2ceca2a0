"""The trading and pipeline figures for /metrics, read from the database at scrape time.

Reading them from the database (not from in-process counters) counts every order, fill
and alert once, however many worker processes did the work. Each scrape costs a handful
of GROUP BY queries over indexed columns plus a few rows of the stage-latency aggregate,
which `observe_task_end` keeps up to date as task runs finish.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

import celeryconfig
from app.config import Settings
from app.extensions import Database
from app.models import (
    AlertRecord,
    FillRecord,
    MarketDataRun,
    Order,
    RiskDecisionRecord,
    StageLatencyBucket,
    StageLatencyTotal,
    TaskRun,
)
from app.services.market_view import newest_data_time
from app.services.queries import portfolio_summary

log = logging.getLogger(__name__)

STAGE_OF_TASK = {
    celeryconfig.MARKET_DATA_TASK: "market_data",
    celeryconfig.SIGNALS_TASK: "signals",
    celeryconfig.RISK_TASK: "risk",
    celeryconfig.EXECUTION_TASK: "execution",
}
STAGES = tuple(STAGE_OF_TASK.values())
# Upper bounds in milliseconds; the hard time limit is 180 s. Migration 0003 backfilled the
# aggregate with these bounds: changing them needs a migration that rebuilds it.
LATENCY_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 180000)


# Writing the aggregate ---------------------------------------------------------------------


def observe_task_end(session: Session, run: TaskRun, now: datetime) -> None:
    """Count a pipeline-stage run that finishes now in the latency aggregate.

    Call it before `run.finished_at` is set: a run that already has a finish time was
    counted (Celery reports a failure twice: task_failure, then task_postrun).
    """
    stage = STAGE_OF_TASK.get(run.name)
    if stage is None or run.finished_at is not None:
        return
    runtime_ms = max(0, int((now - run.started_at).total_seconds() * 1000))
    _increment(
        session, StageLatencyTotal, [{"stage": stage, "count": 1, "sum_ms": runtime_ms}], ["stage"]
    )
    buckets = [
        {"stage": stage, "le_ms": le_ms, "count": 1}
        for le_ms in LATENCY_BUCKETS_MS
        if runtime_ms <= le_ms
    ]
    _increment(session, StageLatencyBucket, buckets, ["stage", "le_ms"])


def _increment(
    session: Session, model: Any, rows: Sequence[dict[str, int | str]], keys: Sequence[str]
) -> None:
    """Insert the rows, or add their numbers to the existing ones, in one atomic statement."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    statement = insert(model).values(list(rows))
    table = model.__table__
    sums = {c: table.c[c] + statement.excluded[c] for c in rows[0] if c not in keys}
    session.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=sums))


# Reading it all at scrape time -----------------------------------------------------------


def pipeline_metrics(session: Session, settings: Settings, now: datetime) -> Iterator[Any]:
    """Every cdb_ metric family, from the database as it is now."""
    yield from _portfolio_metrics(session, settings, now)
    yield from _trading_metrics(session)
    yield from _market_data_metrics(session, now)
    yield _stage_latency(session)


def _portfolio_metrics(session: Session, settings: Settings, now: datetime) -> Iterator[Any]:
    summary = portfolio_summary(session, now)
    yield GaugeMetricFamily(
        "cdb_halted",
        "1 when trading is halted (operator or drawdown)",
        value=float(bool(summary and summary["halted"])),
    )
    yield GaugeMetricFamily(
        "cdb_paused",
        "1 while new orders are paused (circuit breaker or stale data)",
        value=float(bool(summary and summary["paused"])),
    )

    # Fractions, named like the settings they come from (0.05 = 5 %).
    limits = {
        "cdb_max_daily_drawdown_pct": ("MAX_DAILY_DRAWDOWN_PCT", settings.max_daily_drawdown_pct),
        "cdb_max_exposure_pct": ("MAX_EXPOSURE_PCT", settings.max_exposure_pct),
        "cdb_max_position_pct": ("MAX_POSITION_PCT", settings.max_position_pct),
    }
    for name, (variable, limit) in limits.items():
        yield GaugeMetricFamily(name, f"{variable}, as a fraction", value=float(limit))
    if summary is None:
        return

    figures = {
        "cdb_equity": ("Portfolio equity (cash + positions at the latest price), USDT", "equity"),
        "cdb_cash": ("Cash, USDT", "cash"),
        "cdb_exposure": ("Market value of open positions, USDT", "exposure"),
        "cdb_exposure_pct": ("Exposure as a fraction of equity", "exposure_pct"),
        "cdb_daily_pnl": ("Equity minus the equity at 00:00 UTC, USDT", "daily_pnl"),
        "cdb_daily_drawdown_pct": ("Today's drawdown as a fraction", "daily_drawdown_pct"),
        "cdb_realized_pnl": ("Realised PnL since the start, USDT", "realized_pnl"),
        "cdb_unrealized_pnl": ("Unrealised PnL of open positions, USDT", "unrealized_pnl"),
    }
    for name, (documentation, key) in figures.items():
        yield GaugeMetricFamily(name, documentation, value=float(summary[key]))

    positions = GaugeMetricFamily(
        "cdb_position_value", "Market value of each open position, USDT", labels=["symbol"]
    )
    for position in summary["positions"]:
        positions.add_metric([position["symbol"]], float(position["market_value"]))
    yield positions
    yield GaugeMetricFamily(
        "cdb_open_positions", "Number of open positions", value=len(summary["positions"])
    )


def _trading_metrics(session: Session) -> Iterator[Any]:
    # A counter: orders only ever move on from "new", so only that series can drop (which
    # increase() reads as a reset and adds nothing for).
    orders = CounterMetricFamily(
        "cdb_orders", "Orders by side and status", labels=["side", "status"]
    )
    for side, status, count in session.execute(
        select(Order.side, Order.status, func.count()).group_by(Order.side, Order.status)
    ):
        orders.add_metric([side, status], count)
    yield orders

    fills = CounterMetricFamily("cdb_fills", "Paper fills by side", labels=["side"])
    for side, count in session.execute(
        select(FillRecord.side, func.count()).group_by(FillRecord.side)
    ):
        fills.add_metric([side], count)
    yield fills

    rejections = CounterMetricFamily(
        "cdb_risk_rejections",
        "Signals rejected, by the first layer that rejected",
        labels=["layer"],
    )
    for layer, count in session.execute(
        select(RiskDecisionRecord.rejected_by, func.count())
        .where(RiskDecisionRecord.rejected_by.is_not(None))
        .group_by(RiskDecisionRecord.rejected_by)
    ):
        rejections.add_metric([layer], count)
    yield rejections

    alerts = CounterMetricFamily("cdb_alerts", "Alerts by code and level", labels=["code", "level"])
    for code, level, count in session.execute(
        select(AlertRecord.code, AlertRecord.level, func.count()).group_by(
            AlertRecord.code, AlertRecord.level
        )
    ):
        alerts.add_metric([code, level], count)
    yield alerts


def _market_data_metrics(session: Session, now: datetime) -> Iterator[Any]:
    newest = newest_data_time(session)
    if newest is not None:
        yield GaugeMetricFamily(
            "cdb_market_data_age_seconds",
            "Seconds since the newest stored ticker was current",
            value=max(0.0, (now - newest).total_seconds()),
        )
    runs = GaugeMetricFamily(
        "cdb_market_data_runs", "Market-data runs by status", labels=["status"]
    )
    for status, count in session.execute(
        select(MarketDataRun.status, func.count()).group_by(MarketDataRun.status)
    ):
        runs.add_metric([status], count)
    yield runs


def _stage_latency(session: Session) -> HistogramMetricFamily:
    totals = {row.stage: row for row in session.scalars(select(StageLatencyTotal))}
    cumulative: dict[tuple[str, int], int] = {
        (row.stage, row.le_ms): row.count for row in session.scalars(select(StageLatencyBucket))
    }
    family = HistogramMetricFamily(
        "cdb_stage_latency_seconds", "Task run time per pipeline stage", labels=["stage"]
    )
    for stage in STAGES:
        total = totals.get(stage)
        buckets = [
            (floatToGoString(le_ms / 1000), cumulative.get((stage, le_ms), 0))
            for le_ms in LATENCY_BUCKETS_MS
        ]
        buckets.append(("+Inf", total.count if total else 0))
        family.add_metric([stage], buckets, sum_value=(total.sum_ms / 1000) if total else 0.0)
    return family


class PipelineCollector(Collector):
    """A prometheus_client collector that reads the cdb_ figures at every scrape."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock

    def collect(self) -> Iterator[Any]:
        try:
            with self.db.transaction() as session:
                families = list(pipeline_metrics(session, self.settings, self.clock()))
        except SQLAlchemyError as exc:
            log.warning("metrics: cannot read the database: %s", type(exc).__name__)
            families = []
        yield GaugeMetricFamily(
            "cdb_database_up",
            "1 when /metrics could read the database at this scrape",
            value=1.0 if families else 0.0,
        )
        yield from families
