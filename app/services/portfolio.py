"""The portfolio row is the lock that serialises risk and execution across workers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.domain.trading import PortfolioState, Position, RiskState
from app.models import Portfolio, PositionRecord

DEFAULT = "default"


@dataclass
class Locked:
    row: Portfolio
    state: PortfolioState
    risk: RiskState
    stops: dict[str, object]


def ensure_portfolio(session: Session, settings: Settings, now: datetime) -> Portfolio:
    row = session.scalar(select(Portfolio).where(Portfolio.name == DEFAULT))
    if row is None:
        capital = settings.initial_capital
        row = Portfolio(
            name=DEFAULT,
            initial_capital=capital,
            cash=capital,
            realized_pnl=capital * 0,
            fees_paid=capital * 0,
            day=now.date(),
            day_start_equity=capital,
            updated_at=now,
        )
        session.add(row)
        session.flush()
    return row


def lock_portfolio(session: Session, settings: Settings, now: datetime) -> Locked:
    """Take the portfolio's write lock for the rest of the transaction and load it.

    The UPDATE takes a row lock on PostgreSQL and the database write lock on SQLite, so
    one mechanism serialises every risk and execution task, on any number of workers.
    """
    ensure_portfolio(session, settings, now)
    session.execute(update(Portfolio).where(Portfolio.name == DEFAULT).values(updated_at=now))
    row = session.scalars(
        select(Portfolio).where(Portfolio.name == DEFAULT).execution_options(populate_existing=True)
    ).one()
    records = session.scalars(
        select(PositionRecord).where(PositionRecord.portfolio_id == row.id)
    ).all()
    state = PortfolioState(
        cash=row.cash,
        positions={r.symbol: Position(r.symbol, r.qty, r.avg_entry, r.last_price) for r in records},
        realized_pnl=row.realized_pnl,
        fees_paid=row.fees_paid,
        day_start_equity=row.day_start_equity,
        day=row.day,
    )
    risk = RiskState(
        halted=row.halted,
        halt_reason=row.halt_reason,
        halted_at=row.halted_at,
        breaker_paused_until=row.breaker_paused_until,
        breaker_trips=row.breaker_trips,
        stale_paused=row.stale_paused,
    )
    return Locked(row=row, state=state, risk=risk, stops={r.symbol: r.stop_price for r in records})


def save_risk(row: Portfolio, risk: RiskState) -> None:
    row.halted = risk.halted
    row.halt_reason = risk.halt_reason
    row.halted_at = risk.halted_at
    row.breaker_paused_until = risk.breaker_paused_until
    row.breaker_trips = risk.breaker_trips
    row.stale_paused = risk.stale_paused


def save_state(
    session: Session,
    row: Portfolio,
    state: PortfolioState,
    now: datetime,
    stops: dict[str, object] | None = None,
) -> None:
    """Write cash, PnL, the day and every position back (positions that closed are deleted)."""
    row.cash = state.cash
    row.realized_pnl = state.realized_pnl
    row.fees_paid = state.fees_paid
    if state.day is not None:
        row.day = state.day
    if state.day_start_equity is not None:
        row.day_start_equity = state.day_start_equity
    existing = {
        r.symbol: r
        for r in session.scalars(
            select(PositionRecord).where(PositionRecord.portfolio_id == row.id)
        )
    }
    for symbol, record in existing.items():
        if symbol not in state.positions:
            session.delete(record)
    for symbol, position in state.positions.items():
        record = existing.get(symbol)
        if record is None:
            record = PositionRecord(
                portfolio_id=row.id,
                symbol=symbol,
                opened_at=now,
                stop_price=None,
                qty=position.qty,
                avg_entry=position.avg_entry,
                last_price=position.last_price,
                updated_at=now,
            )
            session.add(record)
        record.qty = position.qty
        record.avg_entry = position.avg_entry
        record.last_price = position.last_price
        record.updated_at = now
        if stops and symbol in stops:
            record.stop_price = stops[symbol]  # type: ignore[assignment]
