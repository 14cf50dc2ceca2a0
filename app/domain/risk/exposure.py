"""Layer 4: portfolio exposure blocks a BUY over the limit (and warns above 80 % of it)."""

from __future__ import annotations

from app.domain.risk.limits import EXPOSURE
from app.domain.risk.run import Run
from app.domain.risk.sizing import size_buy
from app.domain.risk.values import pct, ratio, ratio_pct
from app.domain.trading import AlertCode, AlertLevel


def check_exposure(run: Run) -> bool:
    """Block a BUY that would take the exposure over the limit; alert above 80 % of it."""
    limits = run.limits
    if run.is_exit:
        values = {"exposure_before": run.portfolio.exposure, "equity": run.portfolio.equity}
        return run.record(EXPOSURE, True, "pass (exit)", values)
    sizing = size_buy(run)
    after = sizing.exposure_after(sizing.allowed_size)
    limit_value = limits.max_exposure_pct * sizing.equity_after
    values = {
        "exposure_before": run.portfolio.exposure,
        "equity_before": run.portfolio.equity,
        "valued_at_price": sizing.price,
        "size": sizing.allowed_size,
        "exposure_after": after,
        "equity_after": sizing.equity_after,
        "exposure_pct_after": ratio(after, sizing.equity_after),
        "limit": limits.max_exposure_pct,
        "limit_value": limit_value,
    }
    if sizing.equity_after <= 0 or after > limit_value:
        run.alert(
            AlertCode.RISK_LIMIT,
            AlertLevel.CRITICAL,
            f"BUY {run.signal.symbol} blocked: exposure after the order would be "
            f"{ratio_pct(after, sizing.equity_after)} of equity "
            f"(limit {pct(limits.max_exposure_pct)})",
        )
        return run.record(EXPOSURE, False, "block", values)
    if sizing.allowed_size > 0 and after > limits.exposure_alert_ratio * limit_value:
        run.alert(
            AlertCode.RISK_LIMIT,
            AlertLevel.CRITICAL,
            f"exposure above {pct(limits.exposure_alert_ratio)} of limit: "
            f"{ratio_pct(after, sizing.equity_after)} of equity after BUY {run.signal.symbol} "
            f"(limit {pct(limits.max_exposure_pct)})",
        )
    return run.record(EXPOSURE, True, "pass", values)
