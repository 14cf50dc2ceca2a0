"""The trading and pipeline figures for /metrics, read from the database at scrape time.

Reading them from the database (not from in-process counters) counts every order, fill
and alert once, however many worker processes did the work. Each scrape reads running
totals (app.services.counters, kept in the transactions that change what they count), a
few rows of the stage-latency aggregate (kept by `observe_task_end` as task runs finish)
and the active account's positions at their latest prices: a few small indexed reads,
whatever the history.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

import celeryconfig
from app.config import Settings
from app.extensions import Database
from app.models import (
    StageLatencyBucket,
    StageLatencyTotal,
)
from app.services import counters
from app.services.market_view import newest_data_time
from app.services.queries import portfolio_summary
from app.services.store import increment

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


def observe_task_end(executor: Any, name: str, started_at: datetime, now: datetime) -> None:
    """Count a pipeline-stage run of task `name` that finishes now in the latency aggregate
    (`executor`: a session or a connection, inside the transaction that records the end)."""
    stage = STAGE_OF_TASK.get(name)
    if stage is None:
        return
    runtime_ms = max(0, int((now - started_at).total_seconds() * 1000))
    increment(
        executor, StageLatencyTotal, [{"stage": stage, "count": 1, "sum_ms": runtime_ms}], ["stage"]
    )
    le_ms = next((le for le in LATENCY_BUCKETS_MS if runtime_ms <= le), None)
    if le_ms is not None:  # slower than the last bucket: only in the totals (+Inf)
        bucket = {"stage": stage, "le_ms": le_ms, "count": 1}
        increment(executor, StageLatencyBucket, [bucket], ["stage", "le_ms"])


# Reading it all at scrape time -----------------------------------------------------------


def pipeline_metrics(session: Session, settings: Settings, now: datetime) -> Iterator[Any]:
    """Every cdb_ metric family, from the database as it is now."""
    yield from _portfolio_metrics(session, settings, now)
    yield from _trading_metrics(counters.read(session))
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


def _split(labels: str) -> list[str]:
    return [part.partition("=")[2] for part in labels.split(",")]


def _trading_metrics(totals: dict[str, dict[str, int]]) -> Iterator[Any]:
    # Counters: orders only ever move on from "new", so only that series can drop (which
    # increase() reads as a reset and adds nothing for).
    families = (
        (
            "orders",
            CounterMetricFamily,
            "cdb_orders",
            "Orders by side and status",
            ["side", "status"],
        ),
        ("fills", CounterMetricFamily, "cdb_fills", "Paper fills by side", ["side"]),
        (
            "risk_rejections",
            CounterMetricFamily,
            "cdb_risk_rejections",
            "Signals rejected, by the first layer that rejected",
            ["layer"],
        ),
        (
            "alerts",
            CounterMetricFamily,
            "cdb_alerts",
            "Alerts by code and level",
            ["code", "level"],
        ),
        (
            "market_data_runs",
            GaugeMetricFamily,
            "cdb_market_data_runs",
            "Market-data runs by status",
            ["status"],
        ),
    )
    for family, kind, name, documentation, labels in families:
        metric = kind(name, documentation, labels=labels)
        for key, value in sorted(totals.get(family, {}).items()):
            metric.add_metric(_split(key), value)
        yield metric


def _market_data_metrics(session: Session, now: datetime) -> Iterator[Any]:
    newest = newest_data_time(session)
    if newest is not None:
        yield GaugeMetricFamily(
            "cdb_market_data_age_seconds",
            "Seconds since the newest stored ticker was current",
            value=max(0.0, (now - newest).total_seconds()),
        )


def _stage_latency(session: Session) -> HistogramMetricFamily:
    totals = {row.stage: row for row in session.scalars(select(StageLatencyTotal))}
    in_bucket: dict[tuple[str, int], int] = {
        (row.stage, row.le_ms): row.count for row in session.scalars(select(StageLatencyBucket))
    }
    family = HistogramMetricFamily(
        "cdb_stage_latency_seconds", "Task run time per pipeline stage", labels=["stage"]
    )
    for stage in STAGES:
        total = totals.get(stage)
        cumulative = itertools.accumulate(
            in_bucket.get((stage, le_ms), 0) for le_ms in LATENCY_BUCKETS_MS
        )
        buckets = [
            (floatToGoString(le_ms / 1000), count)
            for le_ms, count in zip(LATENCY_BUCKETS_MS, cumulative, strict=True)
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
