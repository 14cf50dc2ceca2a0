"""The decision: the six layers in order for one signal, stopping at the first that rejects."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import localcontext

from app.domain.risk.anomaly import check_anomalies
from app.domain.risk.drawdown import check_drawdown
from app.domain.risk.exposure import check_exposure
from app.domain.risk.limits import POSITION_SIZE, PRECISION, RiskLimits, require_utc
from app.domain.risk.position_size import check_position_size
from app.domain.risk.run import Run
from app.domain.risk.staleness import check_staleness
from app.domain.risk.stop_loss import check_stop_loss
from app.domain.trading import MarketView, PortfolioState, RiskDecision, RiskState, Signal


def decide(
    signal: Signal,
    portfolio: PortfolioState,
    market: MarketView,
    state: RiskState,
    limits: RiskLimits,
    now: datetime,
) -> RiskDecision:
    """Run the six layers in order for one signal; stop at the first that rejects.

    Raises ValueError for a signal that can't be checked at all (size not positive, market
    data for another symbol, naive datetimes). A SELL without a position to sell runs layer 1
    like an entry (a drawdown breach halts whatever the signal) and is then rejected by
    `position_size`; layers 2 to 4 are skipped: there is no order to price, and a nonsense
    SELL must not trip the breaker.
    """
    _validate(signal, market, now)
    with localcontext(prec=PRECISION):
        run = Run(signal, portfolio, market, limits, now, state, signal.size)
        if run.is_exit:
            run.size = min(signal.size, run.held_qty)
        if not check_drawdown(run):
            return run.decision()
        if run.is_exit and run.size <= 0:
            values = {"requested": signal.size, "position_qty": run.held_qty}
            reason = {"reason": "long-only: no position to sell"}
            run.record(POSITION_SIZE, False, "reject", values | reason)
            return run.decision()
        layers: tuple[Callable[[Run], bool], ...] = (
            check_anomalies,
            check_staleness,
            check_exposure,
            check_position_size,
        )
        for layer in layers:
            if not layer(run):
                return run.decision()
        return run.decision(check_stop_loss(run))


def _validate(signal: Signal, market: MarketView, now: datetime) -> None:
    require_utc(now)
    if signal.size <= 0:
        raise ValueError(f"signal size must be positive, got {signal.size}")
    if signal.symbol != market.symbol:
        raise ValueError(f"market data is for {market.symbol}, the signal for {signal.symbol}")
    if market.data_time.utcoffset() is None:
        raise ValueError("market.data_time must be timezone-aware (UTC)")
