"""Paper accounts: start afresh without deleting anything.

`reset_account` closes the active account (its open orders are cancelled, its positions and
history stay as they were) and opens a new one with INITIAL_CAPITAL. Risk and execution
always work on the active account; a closed one stays readable by its id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update

from app.config import Settings
from app.extensions import Database
from app.models import EquitySnapshot, FillRecord, Order, Portfolio, PositionRecord
from app.services import counters
from app.services.market_view import latest_prices
from app.services.portfolio import active_portfolio, lock_portfolio, open_account


def reset_account(
    db: Database, settings: Settings, clock: Callable[[], datetime], reason: str
) -> dict[str, Any]:
    """Close the active account (if any) and open a new one; returns both as summaries."""
    now = clock()
    with db.transaction() as session:
        if active_portfolio(session) is None:  # nothing to close yet
            return {
                "closed": None,
                "opened": account_summary(session, open_account(session, settings, now)),
            }
        locked = lock_portfolio(session, settings, now)
        old = locked.row
        open_sides = session.execute(
            select(Order.side, func.count())
            .where(Order.portfolio_id == old.id, Order.status == "new")
            .group_by(Order.side)
        ).all()
        for side, count in open_sides:
            counters.bump(session, "orders", -count, side=side, status="new")
            counters.bump(session, "orders", count, side=side, status="cancelled")
        cancelled = session.execute(
            update(Order)
            .where(Order.portfolio_id == old.id, Order.status == "new")
            .values(status="cancelled", reject_reason="cancelled: account closed", updated_at=now)
        ).rowcount
        old.active = False
        old.closed_at = now
        old.closed_reason = reason
        session.flush()
        new = open_account(session, settings, now)
        closed = account_summary(session, old)
        closed["orders_cancelled"] = cancelled
        opened = account_summary(session, new)
    return {"closed": closed, "opened": opened}


def account_summary(session: Any, account: Portfolio) -> dict[str, Any]:
    """An account's figures: capital, cash, positions valued at the latest prices, fills."""
    positions = session.scalars(
        select(PositionRecord).where(PositionRecord.portfolio_id == account.id)
    ).all()
    prices = latest_prices(session, [p.symbol for p in positions])
    value = sum((p.qty * prices.get(p.symbol, p.last_price) for p in positions), Decimal(0))
    fills = session.scalar(
        select(func.count(FillRecord.id)).join(Order).where(Order.portfolio_id == account.id)
    )
    snapshots = session.scalar(
        select(func.count(EquitySnapshot.id)).where(EquitySnapshot.portfolio_id == account.id)
    )
    return {
        "account_id": account.id,
        "name": account.name,
        "active": account.active,
        "opened_at": account.opened_at,
        "closed_at": account.closed_at,
        "closed_reason": account.closed_reason,
        "initial_capital": account.initial_capital,
        "cash": account.cash,
        "positions_value": value,
        "equity": account.cash + value,
        "realized_pnl": account.realized_pnl,
        "fees_paid": account.fees_paid,
        "open_positions": len(positions),
        "fills": fills or 0,
        "equity_snapshots": snapshots or 0,
    }


def list_accounts(db: Database) -> list[dict[str, Any]]:
    """Every paper account, newest first."""
    with db.transaction() as session:
        accounts = session.scalars(select(Portfolio).order_by(Portfolio.id.desc())).all()
        return [account_summary(session, a) for a in accounts]
