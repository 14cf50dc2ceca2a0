"""Layer 3: data staleness pauses new orders until fresh data arrives."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from app.domain.risk.limits import DATA_STALENESS, RiskLimits, require_utc
from app.domain.risk.run import Run
from app.domain.trading import Alert, AlertCode, AlertLevel, RiskState


def check_freshness(
    state: RiskState, data_time: datetime | None, limits: RiskLimits, now: datetime
) -> tuple[RiskState, tuple[Alert, ...]]:
    """Layer 3 without a signal: a run that brought no fresh data still pauses new orders.

    `data_time` is when the newest stored market data was current (None: there is none).
    Alerts once, when the pause begins; fresh data lifts the pause.
    """
    require_utc(now)
    timeout = limits.data_stale_timeout
    if data_time is not None and now - data_time <= timeout:
        return replace(state, stale_paused=False), ()
    if state.stale_paused:
        return state, ()
    age = (
        "no market data yet"
        if data_time is None
        else (f"newest market data is {(now - data_time).total_seconds():g} s old")
    )
    alert = Alert(
        AlertCode.DATA_STALE,
        AlertLevel.WARNING,
        f"{age} (timeout {timeout.total_seconds():g} s): new orders paused until fresh data "
        "arrives",
        now,
    )
    return replace(state, stale_paused=True), (alert,)


def check_staleness(run: Run) -> bool:
    """Pause while the data is older than the timeout; alert once, when the pause begins."""
    age = run.now - run.market.data_time
    timeout = run.limits.data_stale_timeout
    values = {
        "data_time": run.market.data_time.isoformat(),
        "age_seconds": age.total_seconds(),
        "timeout_seconds": timeout.total_seconds(),
    }
    if age <= timeout:
        run.state = replace(run.state, stale_paused=False)
        return run.record(DATA_STALENESS, True, "pass", values)
    if not run.state.stale_paused:
        run.alert(
            AlertCode.DATA_STALE,
            AlertLevel.WARNING,
            f"market data for {run.signal.symbol} is {age.total_seconds():g} s old (timeout "
            f"{timeout.total_seconds():g} s): new orders paused until fresh data arrives",
        )
    run.state = replace(run.state, stale_paused=True)
    return run.record(DATA_STALENESS, False, "pause", values)
