"""Portfolio accounting over PortfolioState: pure functions that return new states.

Long-only spot, everything in the quote currency (USDT).

Fee convention — fees are expensed when paid: every fee reduces cash and realized PnL at
the fill that pays it, and is also summed in `fees_paid` (for reporting; it is already
inside `realized_pnl`, do not subtract it twice). So
- a BUY's realized PnL is -fee;
- a SELL's realized PnL is (fill price - avg_entry) * qty - fee;
- a round trip's realized PnL adds up to sell proceeds - buy cost - both fees;
- at all times: cash + market value - initial capital == realized_pnl + unrealized PnL,
  exact up to the rounding of the weighted-average avg_entry (28 significant digits).
avg_entry excludes fees, so unrealized PnL is price PnL only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

from app.domain.paper import FEE_QUANTUM, round_qty
from app.domain.trading import ZERO, Fill, PortfolioState, Position, Side


def utc_date(now: datetime) -> date:
    """The UTC calendar date of `now`; a naive datetime is taken to be UTC already."""
    return now.astimezone(UTC).date() if now.tzinfo is not None else now.date()


def new_portfolio(initial_capital: Decimal, now: datetime) -> PortfolioState:
    if initial_capital <= 0:
        raise ValueError(f"initial capital must be positive, got {initial_capital}")
    return PortfolioState(cash=initial_capital, day=utc_date(now), day_start_equity=initial_capital)


def apply_fill(p: PortfolioState, fill: Fill) -> tuple[PortfolioState, Decimal]:
    """Book a fill; returns the new state and the realized PnL of this fill (see module doc)."""
    if fill.qty <= 0 or fill.avg_price <= 0 or fill.fee < 0:
        raise ValueError(
            f"bad fill for {fill.symbol}: qty {fill.qty}, price {fill.avg_price}, fee {fill.fee}"
        )
    positions = dict(p.positions)
    held = positions.get(fill.symbol)
    if fill.side is Side.BUY:
        cost = fill.notional + fill.fee
        if cost > p.cash:
            raise ValueError(
                f"insufficient cash for {fill.symbol}: need {cost} "
                f"({fill.notional} + fee {fill.fee}), have {p.cash}"
            )
        cash = p.cash - cost
        if held is None:
            qty, avg_entry = fill.qty, fill.avg_price
        else:
            qty = held.qty + fill.qty
            avg_entry = (held.qty * held.avg_entry + fill.notional) / qty
        positions[fill.symbol] = Position(fill.symbol, qty, avg_entry, fill.avg_price)
        realized = -fill.fee
    else:
        held_qty = held.qty if held is not None else ZERO
        if held is None or fill.qty > held.qty:
            raise ValueError(
                f"cannot sell {fill.qty} {fill.symbol}: position holds {held_qty} (long only)"
            )
        cash = p.cash + fill.notional - fill.fee
        realized = (fill.avg_price - held.avg_entry) * fill.qty - fill.fee
        remaining = held.qty - fill.qty
        if remaining == 0:
            del positions[fill.symbol]
        else:
            positions[fill.symbol] = Position(
                fill.symbol, remaining, held.avg_entry, fill.avg_price
            )
    state = replace(
        p,
        cash=cash,
        positions=positions,
        realized_pnl=p.realized_pnl + realized,
        fees_paid=p.fees_paid + fill.fee,
    )
    return state, realized


def mark_to_market(p: PortfolioState, prices: Mapping[str, Decimal]) -> PortfolioState:
    """Re-price held positions; prices of symbols not held are ignored."""
    positions = dict(p.positions)
    for symbol, held in p.positions.items():
        price = prices.get(symbol)
        if price is None:
            continue
        if price <= 0:
            raise ValueError(f"mark price for {symbol} must be positive, got {price}")
        positions[symbol] = Position(symbol, held.qty, held.avg_entry, price)
    return replace(p, positions=positions)


def roll_day(p: PortfolioState, now: datetime) -> PortfolioState:
    """On the first call at/after 00:00 UTC of a later day, restart the daily PnL there.

    Mark to market first: the new day's starting equity is the equity at the current marks.
    """
    today = utc_date(now)
    if p.day is not None and today <= p.day:
        return p
    return replace(p, positions=dict(p.positions), day_start_equity=p.equity, day=today)


def daily_pnl(p: PortfolioState) -> Decimal:
    """Equity change since the start of the current UTC day (zero if no day is set)."""
    if p.day_start_equity is None:
        return ZERO
    return p.equity - p.day_start_equity


def affordable_qty(
    p: PortfolioState, price: Decimal, fee_rate: Decimal, qty_precision: int | None = None
) -> Decimal:
    """The largest quantity whose notional plus fee at `price` fits in the cash.

    Leaves one fee quantum for the broker's upward fee rounding. The broker fills at the
    book's average price, not `price`: pass a price with slippage headroom if that matters.
    Rounded down to `qty_precision` decimals when given.
    """
    if price <= 0:
        raise ValueError(f"price must be positive, got {price}")
    if fee_rate < 0:
        raise ValueError(f"fee rate must be >= 0, got {fee_rate}")
    budget = p.cash - FEE_QUANTUM
    if budget <= 0:
        return ZERO
    with localcontext() as ctx:
        ctx.rounding = ROUND_CEILING
        unit_cost = price * (1 + fee_rate)
        ctx.rounding = ROUND_FLOOR
        qty = budget / unit_cost
    return round_qty(qty, qty_precision) if qty_precision is not None else qty
