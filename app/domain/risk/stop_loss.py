"""Layer 6: the stop for an entry, and the exits when a price falls to it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, localcontext

from app.domain.book import walk_book
from app.domain.risk.limits import (
    ONE,
    PRECISION,
    STOP_LOSS,
    STOP_LOSS_REASON,
    RiskLimits,
    require_utc,
)
from app.domain.risk.run import Run
from app.domain.risk.values import pct, plain
from app.domain.trading import AlertCode, AlertLevel, PortfolioState, Side, Signal


def stop_price(entry_price: Decimal, limits: RiskLimits) -> Decimal:
    """The price at or below which a long position bought at `entry_price` is closed."""
    with localcontext(prec=PRECISION):
        return entry_price * (ONE - limits.stop_loss_pct)


def stop_loss_exits(
    portfolio: PortfolioState, prices: Mapping[str, Decimal], limits: RiskLimits, now: datetime
) -> list[Signal]:
    """Layer 6: a SELL of the whole position for every symbol whose price fell to its stop.

    Symbols without a price in `prices` are skipped. Sorted by symbol. The signals still go
    through `decide` (layers 2 and 3 apply to exits), which raises the stop-loss alert.
    """
    require_utc(now)
    exits = []
    for symbol in sorted(portfolio.positions):
        position = portfolio.positions[symbol]
        price = prices.get(symbol)
        if position.qty <= 0 or price is None:
            continue
        stop = stop_price(position.avg_entry, limits)
        if price <= stop:
            reason = (
                f"{STOP_LOSS_REASON}: price {price} <= stop {stop} "
                f"(entry {position.avg_entry}, -{pct(limits.stop_loss_pct)})"
            )
            exits.append(
                Signal(
                    symbol=symbol,
                    direction=Side.SELL,
                    size=position.qty,
                    signal_strength=ONE,
                    timestamp=now,
                    price=price,
                    reason=reason,
                    is_exit=True,
                )
            )
    return exits


def check_stop_loss(run: Run) -> Decimal | None:
    """Set the stop for an approved entry; alert when a stop-loss exit goes through."""
    if run.is_exit:
        values = {"size": run.size, "reason": run.signal.reason}
        if run.signal.reason.startswith(STOP_LOSS_REASON):
            run.alert(
                AlertCode.RISK_LIMIT,
                AlertLevel.WARNING,
                f"stop-loss exit: SELL {run.size} {run.signal.symbol} ({run.signal.reason})",
            )
        run.record(STOP_LOSS, True, "pass (exit)", values)
        return None
    levels = run.market.asks
    estimate = walk_book(levels, run.size).avg_price
    assert estimate is not None  # layer 2 found the book deep enough for a larger size
    stop = plain(stop_price(estimate, run.limits))
    values = {
        "estimated_entry_price": estimate,
        "stop_loss_pct": run.limits.stop_loss_pct,
        "stop_price": stop,
    }
    run.record(STOP_LOSS, True, "set_stop", values)
    return stop
