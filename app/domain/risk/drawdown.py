"""Layer 1: the daily drawdown. At its limit trading halts until an operator releases it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, localcontext

from app.domain.risk.limits import DAILY_DRAWDOWN, HALT_DRAWDOWN, PRECISION, RiskLimits, require_utc
from app.domain.risk.run import Run
from app.domain.risk.state import with_halt
from app.domain.risk.values import pct
from app.domain.trading import Alert, AlertCode, AlertLevel, PortfolioState, RiskState


def check_state(
    portfolio: PortfolioState, state: RiskState, limits: RiskLimits, now: datetime
) -> tuple[RiskState, tuple[Alert, ...]]:
    """Layer 1 without a signal (after every run / mark-to-market): halt on a drawdown breach.

    Alerts once, when the halt is imposed; an existing drawdown halt is left as is.
    """
    require_utc(now)
    with localcontext(prec=PRECISION):
        drawdown = portfolio.daily_drawdown_pct
        if drawdown < limits.max_daily_drawdown_pct:
            return state, ()
        new_state = with_halt(state, HALT_DRAWDOWN, drawdown_detail(drawdown, limits), now)
        if new_state == state:
            return state, ()
        return new_state, (drawdown_alert(drawdown, limits, now),)


def check_drawdown(run: Run) -> bool:
    limits, portfolio = run.limits, run.portfolio
    drawdown = portfolio.daily_drawdown_pct
    if drawdown >= limits.max_daily_drawdown_pct:
        halted = with_halt(run.state, HALT_DRAWDOWN, drawdown_detail(drawdown, limits), run.now)
        if halted != run.state:
            run.alerts.append(drawdown_alert(drawdown, limits, run.now))
            run.state = halted
    values = {
        "equity": portfolio.equity,
        "day_start_equity": portfolio.day_start_equity,
        "drawdown_pct": drawdown,
        "limit": limits.max_daily_drawdown_pct,
        "halted": run.state.halted,
        "halt_reason": run.state.halt_reason,
    }
    if run.is_exit and run.size > 0:
        return run.record(DAILY_DRAWDOWN, True, "pass (exit)", values)
    if run.state.halted:
        return run.record(DAILY_DRAWDOWN, False, "halt", values)
    return run.record(DAILY_DRAWDOWN, True, "pass", values)


def drawdown_detail(drawdown: Decimal, limits: RiskLimits) -> str:
    return f"{pct(drawdown)} >= {pct(limits.max_daily_drawdown_pct)}"


def drawdown_alert(drawdown: Decimal, limits: RiskLimits, now: datetime) -> Alert:
    message = (
        f"daily drawdown {pct(drawdown)} reached the {pct(limits.max_daily_drawdown_pct)} "
        "limit: trading halted until an operator releases it"
    )
    return Alert(AlertCode.RISK_LIMIT, AlertLevel.CRITICAL, message, now)
