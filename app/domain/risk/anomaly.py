"""Layer 2: market anomalies (slippage, spread, a thin book) trip the circuit breaker."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from app.domain.book import slippage_pct, walk_book
from app.domain.risk.limits import HALT_BREAKER, MARKET_ANOMALY, RiskLimits, require_utc
from app.domain.risk.run import Run
from app.domain.risk.state import with_halt
from app.domain.risk.values import pct
from app.domain.trading import Alert, AlertCode, AlertLevel, RiskState, Side


def check_anomalies(run: Run) -> bool:
    state, limits, now = run.state, run.limits, run.now
    paused_until = state.breaker_paused_until
    if paused_until is not None and now < paused_until:
        values = {
            "paused_until": paused_until.isoformat(),
            "seconds_left": (paused_until - now).total_seconds(),
            "breaker_trips": state.breaker_trips,
        }
        return run.record(MARKET_ANOMALY, False, "pause", values)

    values, problems = _anomalies(run)
    if not problems:
        run.state = replace(state, breaker_paused_until=None, breaker_trips=0)
        return run.record(MARKET_ANOMALY, True, "pass", values)

    what = "; ".join(problems)
    run.state, alerts = trip_breaker(state, limits, now, what, run.signal.symbol)
    run.alerts.extend(alerts)
    action = "halt" if run.state.halted and not state.halted else "pause"
    values |= {
        "problems": what,
        "breaker_trips": run.state.breaker_trips,
        "paused_until": (now + limits.breaker_pause).isoformat(),
    }
    return run.record(MARKET_ANOMALY, False, action, values)


def trip_breaker(
    state: RiskState, limits: RiskLimits, now: datetime, detail: str, symbol: str | None = None
) -> tuple[RiskState, tuple[Alert, ...]]:
    """Trip the circuit breaker: pause new orders for `breaker_pause` (CIRCUIT_BREAKER WARNING).

    Layer 2 trips it; so may execution when a fill turns out worse than the slippage limit.
    More than `breaker_max_retries` trips in a row (no pass in between) escalate to a
    `circuit_breaker` halt (RISK_LIMIT CRITICAL) that needs `resume`; an existing halt is kept.
    """
    require_utc(now)
    trips = state.breaker_trips + 1
    paused = replace(state, breaker_paused_until=now + limits.breaker_pause, breaker_trips=trips)
    where = f" on {symbol}" if symbol else ""
    alerts = [
        Alert(
            AlertCode.CIRCUIT_BREAKER,
            AlertLevel.WARNING,
            f"circuit breaker tripped{where} ({detail}): new orders paused for "
            f"{limits.breaker_pause.total_seconds():g} s (trip {trips}; "
            f"more than {limits.breaker_max_retries} in a row halt trading)",
            now,
            symbol,
        )
    ]
    if trips > limits.breaker_max_retries:
        halted = with_halt(paused, HALT_BREAKER, f"{trips} trips in a row", now)
        if halted != paused:
            paused = halted
            message = (
                f"circuit breaker tripped {trips} times in a row{where}: "
                "trading halted until an operator resumes it"
            )
            alerts.append(Alert(AlertCode.RISK_LIMIT, AlertLevel.CRITICAL, message, now, symbol))
    return paused, tuple(alerts)


def _anomalies(run: Run) -> tuple[dict[str, Any], list[str]]:
    """Walk the book for the order and compare slippage and spread with the limits."""
    market, limits, size = run.market, run.limits, run.size
    side = "asks" if run.signal.direction is Side.BUY else "bids"
    levels = market.asks if run.signal.direction is Side.BUY else market.bids
    run.walk = walk = walk_book(levels, size)
    best, avg = (levels[0][0] if levels else None), walk.avg_price
    slippage = slippage_pct(avg, best) if avg is not None and best else None
    spread, typical = market.spread_pct, market.typical_spread_pct
    spread_limit = limits.max_spread_multiplier * typical if typical is not None else None

    problems = []
    if walk.filled_qty < size:
        problems.append(f"book too thin: {walk.filled_qty} of {size} fillable from the {side}")
    if slippage is not None and slippage > limits.max_slippage_pct:
        problems.append(f"slippage {pct(slippage)} > {pct(limits.max_slippage_pct)}")
    if spread is not None and spread < 0:
        problems.append("crossed book: best ask below best bid")
    elif spread is not None and spread_limit is not None and spread > spread_limit:
        problems.append(
            f"spread {pct(spread)} > {limits.max_spread_multiplier} x typical {pct(typical)}"
        )
    values = {
        "side": side,
        "size": size,
        "best_price": best,
        "filled_qty": walk.filled_qty,
        "estimated_avg_price": avg,
        "slippage_pct": slippage,
        "max_slippage_pct": limits.max_slippage_pct,
        "spread_pct": spread,
        "typical_spread_pct": typical,
        "multiplier": limits.max_spread_multiplier,
        "spread_limit_pct": spread_limit,
    }
    return values, problems
