"""Layer 5: position size trims a BUY to the limit; a SELL is clipped to what is held."""

from __future__ import annotations

from app.domain.risk.limits import POSITION_SIZE
from app.domain.risk.run import Run
from app.domain.risk.sizing import size_buy
from app.domain.trading import ZERO, AlertCode, AlertLevel


def check_position_size(run: Run) -> bool:
    """Trim a BUY to the position limit (reject if nothing is left); clip a SELL to the qty."""
    signal = run.signal
    if run.is_exit:
        values = {"requested": signal.size, "position_qty": run.held_qty, "size": run.size}
        clipped = run.size < signal.size
        return run.record(POSITION_SIZE, True, "trim" if clipped else "pass (exit)", values)
    sizing = size_buy(run)
    size = sizing.allowed_size
    values = {
        "valued_at_price": sizing.price,
        "position_value_before": sizing.position_after(ZERO),
        "position_value_after": sizing.position_after(size),
        "equity_after": sizing.equity_after,
        "limit": run.limits.max_position_pct,
        "limit_value": run.limits.max_position_pct * sizing.equity_after,
        "requested": signal.size,
        "size": size,
    }
    if size <= 0:
        return run.record(POSITION_SIZE, False, "reject", values | {"reason": "position at limit"})
    run.size = size
    if size < signal.size:
        run.alert(
            AlertCode.RISK_LIMIT,
            AlertLevel.WARNING,
            f"position trimmed: {signal.symbol} {signal.size} → {size}",
        )
        values |= {"trimmed_from": signal.size, "trimmed_to": size}
        return run.record(POSITION_SIZE, True, "trim", values)
    return run.record(POSITION_SIZE, True, "pass", values)
