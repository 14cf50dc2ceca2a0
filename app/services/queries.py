"""Read-only answers for the CLI and (later) the admin panel."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.trading import PortfolioState, Position
from app.models import (
    AlertRecord,
    BookSnapshot,
    EquitySnapshot,
    FillRecord,
    MarketDataRun,
    Order,
    Portfolio,
    PositionRecord,
    RiskDecisionRecord,
    SignalRecord,
    TaskRun,
    TickerSnapshot,
)
from app.services.market_view import latest_prices
from app.services.portfolio import active_portfolio

PCT = Decimal("0.000001")  # fractions shown to 0.0001 %


def find_account(session: Session, account_id: int | None = None) -> Portfolio | None:
    """The paper account with this id, or the active one."""
    if account_id is not None:
        return session.get(Portfolio, account_id)
    return active_portfolio(session)


def portfolio_summary(
    session: Session, now: datetime, account_id: int | None = None
) -> dict[str, Any] | None:
    """The active account (or `account_id`) now: cash, positions at the latest prices, risk
    state. None when there is no such account."""
    row = find_account(session, account_id)
    if row is None:
        return None
    records = session.scalars(
        select(PositionRecord).where(PositionRecord.portfolio_id == row.id)
    ).all()
    prices = latest_prices(session, [r.symbol for r in records])
    positions = {
        r.symbol: Position(r.symbol, r.qty, r.avg_entry, prices.get(r.symbol, r.last_price))
        for r in records
    }
    state = PortfolioState(
        cash=row.cash, positions=positions, day_start_equity=row.day_start_equity, day=row.day
    )
    stops = {r.symbol: r.stop_price for r in records}
    paused_until = row.breaker_paused_until
    return {
        "account_id": row.id,
        "account": row.name,
        "active": row.active,
        "opened_at": row.opened_at,
        "closed_at": row.closed_at,
        "currency": "USDT",
        "cash": row.cash,
        "equity": state.equity,
        "exposure": state.exposure,
        "exposure_pct": state.exposure_pct.quantize(PCT),
        "initial_capital": row.initial_capital,
        "realized_pnl": row.realized_pnl,
        "unrealized_pnl": sum((p.unrealized_pnl for p in positions.values()), Decimal(0)),
        "fees_paid": row.fees_paid,
        "day": row.day.isoformat(),
        "day_start_equity": row.day_start_equity,
        "daily_pnl": state.equity - row.day_start_equity,
        "daily_drawdown_pct": state.daily_drawdown_pct.quantize(PCT),
        "halted": row.halted,
        "halt_reason": row.halt_reason,
        "paused": bool(paused_until and paused_until > now) or row.stale_paused,
        "circuit_breaker_until": paused_until if paused_until and paused_until > now else None,
        "stale_paused": row.stale_paused,
        "positions": [
            {
                "symbol": p.symbol,
                "qty": p.qty,
                "avg_entry": p.avg_entry,
                "last_price": p.last_price,
                "market_value": p.market_value,
                "unrealized_pnl": p.unrealized_pnl,
                "stop_price": stops.get(p.symbol),
            }
            for p in positions.values()
        ],
    }


def list_orders(
    session: Session, limit: int, account_id: int | None = None
) -> list[dict[str, Any]]:
    """The newest orders of the account (default: the active one), with their fills."""
    account = find_account(session, account_id)
    if account is None:
        return []
    rows = session.execute(
        select(Order, FillRecord)
        .outerjoin(FillRecord, FillRecord.order_id == Order.id)
        .where(Order.portfolio_id == account.id)
        .order_by(Order.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "order_id": o.id,
            "client_order_id": o.client_order_id,
            "account_id": o.portfolio_id,
            "symbol": o.symbol,
            "side": o.side,
            "size": o.size,
            "est_price": o.est_price,
            "status": o.status,
            "reject_reason": o.reject_reason,
            "created_at": o.created_at,
            "fill": None
            if f is None
            else {
                "qty": f.qty,
                "price": f.price,
                "notional": f.notional,
                "fee": f.fee,
                "realized_pnl": f.realized_pnl,
                "filled_at": f.filled_at,
            },
        }
        for o, f in rows
    ]


def trace(session: Session, order_id: int) -> dict[str, Any] | None:
    order = session.get(Order, order_id)
    if order is None:
        return None
    signal = session.get_one(SignalRecord, order.signal_id)
    decision = session.get_one(RiskDecisionRecord, order.decision_id)
    run = session.get_one(MarketDataRun, order.run_id)
    fill = session.scalar(select(FillRecord).where(FillRecord.order_id == order.id))
    ticker = session.scalar(
        select(TickerSnapshot).where(
            TickerSnapshot.run_id == run.id, TickerSnapshot.symbol == order.symbol
        )
    )
    book = session.scalar(
        select(BookSnapshot).where(
            BookSnapshot.run_id == run.id, BookSnapshot.symbol == order.symbol
        )
    )
    task_ids = {
        "market_data": run.run_key,
        "signals": signal.task_id,
        "risk": decision.task_id,
        "execution": fill.task_id if fill else None,
    }
    known = set(
        session.scalars(
            select(TaskRun.task_id).where(TaskRun.task_id.in_([t for t in task_ids.values() if t]))
        )
    )
    return {
        "order": {
            "order_id": order.id,
            "client_order_id": order.client_order_id,
            "account_id": order.portfolio_id,
            "symbol": order.symbol,
            "side": order.side,
            "size": order.size,
            "status": order.status,
            "reject_reason": order.reject_reason,
            "approved_by": order.approved_by,
            "created_at": order.created_at,
        },
        "signal": {
            "signal_id": signal.id,
            "strategy": signal.strategy,
            "direction": signal.direction,
            "size": signal.size,
            "signal_strength": signal.signal_strength,
            "price": signal.price,
            "reason": signal.reason,
            "is_exit": signal.is_exit,
            "timestamp": signal.timestamp,
        },
        "market_data": {
            "run_id": run.id,
            "run_started_at": run.started_at,
            "run_status": run.status,
            "ticker": None
            if ticker is None
            else {
                "last_price": ticker.last_price,
                "bid": ticker.bid_price,
                "ask": ticker.ask_price,
                "price_change_pct": ticker.price_change_pct,
                "quote_volume": ticker.quote_volume,
                "close_time": ticker.close_time,
            },
            "book": None
            if book is None
            else {
                "best_bid": book.best_bid,
                "best_ask": book.best_ask,
                "bids": book.bids[:5],
                "asks": book.asks[:5],
                "fetched_at": book.fetched_at,
            },
        },
        "risk": {
            "decision_id": decision.id,
            "approved": decision.approved,
            "size": decision.size,
            "stop_price": decision.stop_price,
            "layers": decision.verdicts,
            "decided_at": decision.decided_at,
        },
        "fill": None
        if fill is None
        else {
            "fill_id": fill.id,
            "qty": fill.qty,
            "price": fill.price,
            "notional": fill.notional,
            "fee": fill.fee,
            "slippage_pct": fill.slippage_pct,
            "realized_pnl": fill.realized_pnl,
            "filled_at": fill.filled_at,
        },
        "task_ids": task_ids,
        "task_runs_recorded": sorted(known),
    }


def alerts(session: Session, limit: int) -> list[dict[str, Any]]:
    rows = session.scalars(select(AlertRecord).order_by(AlertRecord.id.desc()).limit(limit))
    return [
        {
            "id": a.id,
            "code": a.code,
            "level": a.level,
            "message": a.message,
            "symbol": a.symbol,
            "source": a.source,
            "run_id": a.run_id,
            "created_at": a.created_at,
        }
        for a in rows
    ]


def statistics(session: Session, account_id: int | None = None) -> dict[str, Any]:
    """Trades per day, average signal → order latency, win rate, equity curve of the account
    (default: the active one)."""
    account = find_account(session, account_id)
    portfolio_id = account.id if account else -1
    fills = session.scalars(
        select(FillRecord)
        .join(Order, Order.id == FillRecord.order_id)
        .where(Order.portfolio_id == portfolio_id)
        .order_by(FillRecord.filled_at)
    ).all()
    per_day: dict[str, int] = defaultdict(int)
    for fill in fills:
        per_day[fill.filled_at.date().isoformat()] += 1
    exits = [f for f in fills if f.side == "SELL"]
    wins = [f for f in exits if f.realized_pnl > 0]
    latencies = [
        (order.created_at - signal.timestamp).total_seconds()
        for order, signal in session.execute(
            select(Order, SignalRecord)
            .join(SignalRecord, SignalRecord.id == Order.signal_id)
            .where(Order.portfolio_id == portfolio_id)
        ).all()
    ]
    curve = session.scalars(
        select(EquitySnapshot)
        .where(EquitySnapshot.portfolio_id == portfolio_id)
        .order_by(EquitySnapshot.taken_at)
    ).all()
    return {
        "account_id": account.id if account else None,
        "trades_per_day": dict(per_day),
        "avg_signal_to_order_seconds": (
            round(sum(latencies) / len(latencies), 3) if latencies else None
        ),
        "closed_trades": len(exits),
        "win_rate": (Decimal(len(wins)) / len(exits)).quantize(Decimal("0.0001"))
        if exits
        else None,
        "equity_curve": [
            {"taken_at": s.taken_at, "equity": s.equity, "run_id": s.run_id} for s in curve
        ],
    }
