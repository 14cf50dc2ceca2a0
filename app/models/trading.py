"""The trading pipeline's records: portfolio and risk state, signals, decisions, orders, fills."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint, text, true
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class Portfolio(Base):
    """A paper account: cash and the risk manager's state. Risk and execution lock the active
    account's row, so two workers can never both pass a check that together they break.

    Exactly one account is active (a partial unique index); `cdb paper reset` closes it and
    opens a new one, and a closed account keeps its orders, fills and equity for reading."""

    __tablename__ = "portfolios"
    __table_args__ = (
        Index(
            "uq_portfolios_one_active",
            "active",
            unique=True,
            postgresql_where=text("active"),
            sqlite_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    opened_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_reason: Mapped[str | None] = mapped_column(Text)
    initial_capital: Mapped[Decimal]
    cash: Mapped[Decimal]
    realized_pnl: Mapped[Decimal]
    fees_paid: Mapped[Decimal]
    day: Mapped[date] = mapped_column(Date)
    day_start_equity: Mapped[Decimal]
    halted: Mapped[bool] = mapped_column(default=False)
    halt_reason: Mapped[str | None] = mapped_column(Text)
    halted_at: Mapped[datetime | None]
    breaker_paused_until: Mapped[datetime | None]
    breaker_trips: Mapped[int] = mapped_column(default=0)
    stale_paused: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]


class PositionRecord(Base):
    __tablename__ = "positions"
    __table_args__ = (UniqueConstraint("portfolio_id", "symbol"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id"))
    symbol: Mapped[str] = mapped_column(String(32))
    qty: Mapped[Decimal]
    avg_entry: Mapped[Decimal]
    last_price: Mapped[Decimal]
    stop_price: Mapped[Decimal | None]
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SignalRecord(Base):
    """One strategy signal; at most one per market-data run and symbol."""

    __tablename__ = "signals"
    __table_args__ = (UniqueConstraint("run_id", "symbol"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("market_data_runs.id"))
    symbol: Mapped[str] = mapped_column(String(32))
    strategy: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(4))
    size: Mapped[Decimal]
    signal_strength: Mapped[Decimal]
    price: Mapped[Decimal]
    is_exit: Mapped[bool]
    reason: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[datetime]
    task_id: Mapped[str | None] = mapped_column(String(64))


class Evaluation(Base):
    """The strategy's verdict on one symbol of one run, signal or not: why it did (not) trade.

    `outcome` is one of app.domain.strategies.OUTCOMES; `values` holds the numbers behind it
    as exact decimal strings (fractions for `_pct` keys, like the settings). A signal of the
    same run and symbol, when there is one, is found by (run_id, symbol)."""

    __tablename__ = "evaluations"
    __table_args__ = (UniqueConstraint("run_id", "symbol"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("market_data_runs.id"))
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    strategy: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(24), index=True)
    reason: Mapped[str] = mapped_column(Text)
    values: Mapped[dict[str, Any]]
    evaluated_at: Mapped[datetime]


class RiskDecisionRecord(Base):
    """The risk manager's verdict on one signal, with every layer's values."""

    __tablename__ = "risk_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signals.id"), unique=True)
    approved: Mapped[bool]
    size: Mapped[Decimal]
    rejected_by: Mapped[str | None] = mapped_column(String(32), index=True)
    stop_price: Mapped[Decimal | None]
    verdicts: Mapped[list[Any]]
    decided_at: Mapped[datetime]
    task_id: Mapped[str | None] = mapped_column(String(64))


class Order(Base):
    """An approved order. `client_order_id` is derived from the signal, so it exists once."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(64), unique=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id"))
    run_id: Mapped[int] = mapped_column(ForeignKey("market_data_runs.id"), index=True)
    signal_id: Mapped[int] = mapped_column(ForeignKey("signals.id"), unique=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("risk_decisions.id"), unique=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    size: Mapped[Decimal]
    est_price: Mapped[Decimal]
    # new, filled, rejected; expired (data too old to fill), cancelled (its account closed)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    approved_by: Mapped[list[Any]]
    risk_checks: Mapped[list[Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FillRecord(Base):
    """The one fill of an order: the unique order_id makes a second fill impossible."""

    __tablename__ = "fills"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), unique=True)
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    side: Mapped[str] = mapped_column(String(4))
    qty: Mapped[Decimal]
    price: Mapped[Decimal]
    notional: Mapped[Decimal]
    fee: Mapped[Decimal]
    slippage_pct: Mapped[Decimal]
    realized_pnl: Mapped[Decimal]
    filled_at: Mapped[datetime] = mapped_column(index=True)
    task_id: Mapped[str | None] = mapped_column(String(64))


class EquitySnapshot(Base):
    __tablename__ = "equity_snapshots"
    __table_args__ = (UniqueConstraint("portfolio_id", "run_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    portfolio_id: Mapped[int] = mapped_column(ForeignKey("portfolios.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("market_data_runs.id"))
    equity: Mapped[Decimal]
    cash: Mapped[Decimal]
    exposure: Mapped[Decimal]
    drawdown_pct: Mapped[Decimal]
    daily_pnl: Mapped[Decimal]
    taken_at: Mapped[datetime] = mapped_column(index=True)


class AlertRecord(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), index=True)
    level: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str | None] = mapped_column(String(32))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("market_data_runs.id"))
    source: Mapped[str] = mapped_column(String(16))  # risk, execution, operator
    created_at: Mapped[datetime] = mapped_column(index=True)
    acknowledged_at: Mapped[datetime | None]


class TaskRun(Base):
    """Every Celery task run, recorded from Celery's signals."""

    __tablename__ = "task_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    queue: Mapped[str | None] = mapped_column(String(32))
    args: Mapped[list[Any]]
    kwargs: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    runtime_ms: Mapped[int | None]
    result: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    parent_task_id: Mapped[str | None] = mapped_column(String(64))
    root_task_id: Mapped[str | None] = mapped_column(String(64))
    rerun_of: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=1)
