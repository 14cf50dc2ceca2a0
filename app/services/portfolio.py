"""The active paper account's row is the lock that serialises risk and execution across
workers. Exactly one account is active at a time (a partial unique index); the first risk or
execution run opens one with INITIAL_CAPITAL."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ScalarSelect, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.domain.trading import PortfolioState, Position, RiskState
from app.models import LatestTicker, Portfolio, PositionRecord

LOCK_ATTEMPTS = 5


@dataclass
class Locked:
    row: Portfolio
    state: PortfolioState
    risk: RiskState
    stops: dict[str, object]
    records: dict[str, PositionRecord]  # the position rows, loaded under the lock
    latest: dict[str, Decimal]  # the newest stored price of each held symbol that has one


def active_portfolio(session: Session) -> Portfolio | None:
    """The account trading now (None before the first risk or execution run)."""
    return session.scalar(select(Portfolio).where(Portfolio.active.is_(True)))


def active_portfolio_id() -> ScalarSelect[int]:
    """The active account's id as a scalar subquery, for filters."""
    return select(Portfolio.id).where(Portfolio.active.is_(True)).scalar_subquery()


def held_positions(session: Session) -> list[PositionRecord]:
    """The active account's open positions."""
    return list(
        session.scalars(
            select(PositionRecord).where(PositionRecord.portfolio_id == active_portfolio_id())
        )
    )


# The active account's cash with each open position (one row per position, or one with no
# position), in one read: every signal task runs it.
_CASH_AND_POSITIONS = (
    select(
        Portfolio.cash,
        PositionRecord.symbol,
        PositionRecord.qty,
        PositionRecord.avg_entry,
        PositionRecord.last_price,
    )
    .outerjoin(PositionRecord, PositionRecord.portfolio_id == Portfolio.id)
    .where(Portfolio.active.is_(True))
)


def cash_and_positions(
    session: Session, initial_capital: Decimal
) -> tuple[Decimal, dict[str, Position]]:
    """The active account's cash and open positions, unlocked (`initial_capital` and none
    before the first risk or execution run opened an account)."""
    rows = session.connection().execute(_CASH_AND_POSITIONS).all()
    if not rows:
        return initial_capital, {}
    held = {
        symbol: Position(symbol, qty, avg_entry, last_price)
        for _, symbol, qty, avg_entry, last_price in rows
        if symbol is not None
    }
    return rows[0].cash, held


def open_account(session: Session, settings: Settings, now: datetime) -> Portfolio:
    """Insert a new active account with INITIAL_CAPITAL (the caller closed the old one).

    Raises IntegrityError when another transaction opened one first."""
    number = (session.scalar(select(func.max(Portfolio.id))) or 0) + 1
    capital = settings.initial_capital
    row = Portfolio(
        name=f"paper-{number}",
        active=True,
        opened_at=now,
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


# Built once: every risk and execution task runs them.
_ACTIVE = (
    select(Portfolio).where(Portfolio.active.is_(True)).execution_options(populate_existing=True)
)
# PostgreSQL: one statement locks the row and loads it. SQLite has no row locks: an UPDATE
# takes the database's write lock, then the row is read.
_LOCK_AND_LOAD = _ACTIVE.with_for_update()
_LOCK = (
    update(Portfolio.__table__)
    .where(Portfolio.__table__.c.active.is_(True))
    .values(updated_at=bindparam("now"))
)
# The positions with their symbols' newest stored prices: read after the lock is taken, so
# both are as fresh as a separate read of latest_tickers would be, one round trip fewer.
_POSITIONS = (
    select(PositionRecord, LatestTicker.last_price)
    .outerjoin(LatestTicker, LatestTicker.symbol == PositionRecord.symbol)
    .where(PositionRecord.portfolio_id == bindparam("portfolio_id"))
)


def _take_lock(session: Session, now: datetime) -> Portfolio | None:
    """The active account's row, locked for the rest of the transaction (None: none)."""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalars(_LOCK_AND_LOAD).first()
    if not session.connection().execute(_LOCK, {"now": now}).rowcount:
        return None
    return session.scalars(_ACTIVE).one()


def lock_portfolio(session: Session, settings: Settings, now: datetime) -> Locked:
    """Take the active account's write lock for the rest of the transaction and load it.

    A row lock (SELECT … FOR UPDATE) on PostgreSQL and the database write lock on SQLite:
    one mechanism serialises every risk and execution task, on any number of workers. When
    there is no active account yet (or it was closed while we waited for its lock), one is
    opened; the partial unique index lets only one of two racing transactions do that.
    """
    for _ in range(LOCK_ATTEMPTS):
        row = _take_lock(session, now)
        if row is not None:
            break
        try:
            with session.begin_nested():
                row = open_account(session, settings, now)
        except IntegrityError:
            continue  # another transaction opened it: lock that one
        break
    else:
        raise RuntimeError("could not lock the active paper account")
    loaded = session.execute(_POSITIONS, {"portfolio_id": row.id}).all()
    records = [record for record, _ in loaded]
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
    return Locked(
        row=row,
        state=state,
        risk=risk,
        stops={r.symbol: r.stop_price for r in records},
        records={r.symbol: r for r in records},
        latest={r.symbol: price for r, price in loaded if price is not None},
    )


def _write(row: Portfolio, values: dict[str, object], now: datetime) -> None:
    """Set the values that changed; the row's updated_at moves only when one did."""
    changed = {name: v for name, v in values.items() if getattr(row, name) != v}
    for name, value in changed.items():
        setattr(row, name, value)
    if changed:
        row.updated_at = now


def save_risk(row: Portfolio, risk: RiskState, now: datetime) -> None:
    _write(row, asdict(risk), now)


def save_state(
    session: Session,
    locked: Locked,
    state: PortfolioState,
    now: datetime,
    stops: dict[str, object] | None = None,
) -> None:
    """Write cash, PnL, the day and every position back (positions that closed are deleted;
    a row is written only when it changed)."""
    row = locked.row
    values: dict[str, object] = {
        "cash": state.cash,
        "realized_pnl": state.realized_pnl,
        "fees_paid": state.fees_paid,
    }
    if state.day is not None:
        values["day"] = state.day
    if state.day_start_equity is not None:
        values["day_start_equity"] = state.day_start_equity
    _write(row, values, now)
    for symbol, record in locked.records.items():
        if symbol not in state.positions:
            session.delete(record)
    for symbol, position in state.positions.items():
        record = locked.records.get(symbol)
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
        values = {
            "qty": position.qty,
            "avg_entry": position.avg_entry,
            "last_price": position.last_price,
        }
        if stops and symbol in stops:
            values["stop_price"] = stops[symbol]
        changed = {name: v for name, v in values.items() if getattr(record, name) != v}
        for name, value in changed.items():
            setattr(record, name, value)
        if changed:
            record.updated_at = now
