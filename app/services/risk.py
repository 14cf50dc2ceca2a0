"""The risk stage: the six layers over a run's signals, and the operator's controls."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, exists, insert, select

from app.config import Settings
from app.domain import risk as rules
from app.domain.book import walk_book
from app.domain.portfolio import mark_to_market, roll_day
from app.domain.trading import (
    Alert,
    AlertCode,
    AlertLevel,
    LayerVerdict,
    PortfolioState,
    Position,
    RiskDecision,
    Side,
    Signal,
)
from app.events import validate
from app.extensions import Database
from app.faults import crash_point
from app.models import Order, RiskDecisionRecord, SignalRecord
from app.services import counters
from app.services.alerts import store_alerts
from app.services.market_view import market_views, newest_data_time
from app.services.portfolio import lock_portfolio, save_risk, save_state
from app.services.stages import (
    check_stage_message,
    load_run,
    mark_done,
    run_age,
    too_old,
)
from app.services.store import upsert

log = logging.getLogger(__name__)


def verdict_dict(v: LayerVerdict) -> dict[str, Any]:
    return {
        "layer": v.layer,
        "name": v.name,
        "passed": v.passed,
        "action": v.action,
        "values": dict(v.values),
    }


# Built once: every risk task runs them (the decisions and orders as Core inserts: no ORM
# objects are needed after the insert).
_INSERT_DECISION = insert(RiskDecisionRecord.__table__).returning(RiskDecisionRecord.__table__.c.id)
_INSERT_ORDER = insert(Order.__table__)
# An anti-join on the decisions' unique signal_id: no scan of every decision ever made.
_UNDECIDED = ~exists().where(RiskDecisionRecord.signal_id == SignalRecord.id)
# The run's undecided signals, exits first, then the strongest: the columns a decision needs.
_PENDING_SIGNALS = (
    select(
        SignalRecord.id,
        SignalRecord.symbol,
        SignalRecord.direction,
        SignalRecord.size,
        SignalRecord.signal_strength,
        SignalRecord.timestamp,
        SignalRecord.price,
        SignalRecord.reason,
        SignalRecord.is_exit,
    )
    .where(
        SignalRecord.run_id == bindparam("run_id"),
        _UNDECIDED,
    )
    .order_by(SignalRecord.is_exit.desc(), SignalRecord.signal_strength.desc(), SignalRecord.id)
)
_PENDING_ORDERS = (
    select(Order.symbol, Order.side, Order.size, Order.est_price)
    .where(Order.status == "new", Order.portfolio_id == bindparam("portfolio_id"))
    .order_by(Order.id)
)


def decide_run(
    db: Database,
    settings: Settings,
    run_id: int,
    clock: Callable[[], datetime],
    task_id: str | None = None,
) -> str | None:
    """Decide every undecided signal of the run; returns the stage to send next (see
    stages.mark_done), or None."""
    check_stage_message(run_id)
    limits = rules.RiskLimits.from_settings(settings)
    now = clock()
    with db.transaction() as session:
        run = load_run(session, run_id)
        if too_old(run, now, settings.data_stale_timeout_sec):
            lock_portfolio(session, settings, now)  # one decider per run at a time
            return _expire_stale_run(session, run, settings, now, task_id)
        locked = lock_portfolio(session, settings, now)
        state = roll_day(mark_to_market(locked.state, locked.latest), now)
        risk, drawdown = rules.check_state(state, locked.risk, limits, now)
        risk, stale = rules.check_freshness(risk, newest_data_time(session), limits, now)
        alerts = [*drawdown, *stale]  # stored with the decisions' alerts in one insert
        state = _with_pending_orders(session, state, locked.row.id)
        tally = counters.Tally()
        placed = 0

        conn = session.connection()  # Core statements: none of the ORM's execution path
        pending = conn.execute(_PENDING_SIGNALS, {"run_id": run_id}).all()
        views = market_views(session, run_id, (record.symbol for record in pending))
        for record in pending:
            signal = _signal(record)
            market = views.get(record.symbol, (None, None))[0]
            if market is None:
                decision = _no_market(risk)
            else:
                decision = rules.decide(signal, state, market, risk, limits, now)
            risk = decision.state
            alerts.extend(decision.alerts)
            decision_id = conn.execute(
                _INSERT_DECISION,
                {
                    "signal_id": record.id,
                    "approved": decision.approved,
                    "size": decision.size,
                    "rejected_by": decision.rejected_by,
                    "stop_price": decision.stop_price,
                    "verdicts": [verdict_dict(v) for v in decision.verdicts],
                    "decided_at": now,
                    "task_id": task_id,
                },
            ).scalar_one()
            if decision.rejected_by:
                tally.add("risk_rejections", layer=decision.rejected_by)
            if decision.approved and market is not None:
                order = _order(locked.row.id, run_id, record, decision_id, decision, market, now)
                conn.execute(_INSERT_ORDER, order)
                placed += 1
                tally.add("orders", side=order["side"], status="new")
                state = _apply_estimate(
                    state, order["symbol"], order["side"], order["size"], order["est_price"]
                )
        store_alerts(session, alerts, source="risk", run_id=run_id, tally=tally)
        tally.write(session)
        save_risk(locked.row, risk, now)
        save_state(
            session,
            locked,
            replace(locked.state, day=state.day, day_start_equity=state.day_start_equity),
            now,
        )
        following = mark_done(session, run, "risk", now)
        crash_point("risk.before_commit")
    log.info("risk decided", extra={"run_id": run_id, "signals": len(pending), "orders": placed})
    return following


def _expire_stale_run(
    session: Any, run: Any, settings: Settings, now: datetime, task_id: str | None
) -> str | None:
    """The run's data is too old by now: its undecided signals are rejected with that reason,
    and the risk state is left alone (the market is not stale, the message is late)."""
    age = run_age(run, now).total_seconds()
    verdict = {
        "layer": 3,
        "name": rules.DATA_STALENESS,
        "passed": False,
        "action": "expire",
        "values": {
            "age_seconds": f"{age:.3f}",
            "timeout_seconds": str(settings.data_stale_timeout_sec),
            "reason": "the run's data was too old when the risk stage got to it",
        },
    }
    pending = session.scalars(
        select(SignalRecord.id).where(SignalRecord.run_id == run.id, _UNDECIDED)
    ).all()
    rows = [
        {
            "signal_id": signal_id,
            "approved": False,
            "size": Decimal(0),
            "rejected_by": rules.DATA_STALENESS,
            "stop_price": None,
            "verdicts": [verdict],
            "decided_at": now,
            "task_id": task_id,
        }
        for signal_id in pending
    ]
    upsert(session, RiskDecisionRecord, rows, ["signal_id"], update=False)
    if rows:
        counters.bump(session, "risk_rejections", len(rows), layer=rules.DATA_STALENESS)
    following = mark_done(session, run, "risk", now)
    if rows:
        log.warning(
            "stale run: signals rejected",
            extra={"run_id": run.id, "signals": len(rows), "age_seconds": round(age, 1)},
        )
    return following


def _signal(r: Any) -> Signal:
    return Signal(
        symbol=r.symbol,
        direction=Side(r.direction),
        size=r.size,
        signal_strength=r.signal_strength,
        timestamp=r.timestamp,
        price=r.price,
        reason=r.reason,
        is_exit=r.is_exit,
    )


def _no_market(risk: rules.RiskState) -> RiskDecision:
    verdict = LayerVerdict(3, "data_staleness", False, "reject", {"market_data": "missing"})
    return RiskDecision(False, Decimal(0), (verdict,), (), risk, rejected_by="data_staleness")


def _order(portfolio_id, run_id, signal, decision_id, decision, market, now) -> dict[str, Any]:
    side = Side(signal.direction)
    levels = market.asks if side is Side.BUY else market.bids
    walk = walk_book(levels, decision.size)
    est_price = walk.avg_price or market.last_price
    checks = [verdict_dict(v) for v in decision.verdicts]
    payload = {
        "client_order_id": f"cdb-{signal.id}",
        "symbol": signal.symbol,
        "side": str(side),
        "size": format(decision.size, "f"),
        "approved_by": [v["name"] for v in checks if v["passed"]],
        "risk_checks": checks,
        "timestamp": now.isoformat(),
    }
    validate("order", payload)
    return {
        "client_order_id": payload["client_order_id"],
        "portfolio_id": portfolio_id,
        "run_id": run_id,
        "signal_id": signal.id,
        "decision_id": decision_id,
        "symbol": signal.symbol,
        "side": str(side),
        "size": decision.size,
        "est_price": est_price,
        "status": "new",
        "reject_reason": None,
        "approved_by": payload["approved_by"],
        "risk_checks": checks,
        "created_at": now,
        "updated_at": now,
    }


def _apply_estimate(
    state: PortfolioState, symbol: str, side: str, size: Decimal, est_price: Decimal
) -> PortfolioState:
    """Count an approved, not yet filled order as if filled, so later checks see it."""
    positions = dict(state.positions)
    held = positions.get(symbol)
    notional = size * est_price
    if side == "BUY":
        qty = (held.qty if held else 0) + size
        avg = ((held.qty * held.avg_entry if held else 0) + notional) / qty
        positions[symbol] = Position(symbol, qty, avg, est_price)
        return replace(state, cash=state.cash - notional, positions=positions)
    if held is not None:
        left = held.qty - size
        if left > 0:
            positions[symbol] = replace(held, qty=left)
        else:
            positions.pop(symbol)
    return replace(state, cash=state.cash + notional, positions=positions)


def _with_pending_orders(session, state: PortfolioState, portfolio_id: int) -> PortfolioState:
    for symbol, side, size, est_price in session.connection().execute(
        _PENDING_ORDERS, {"portfolio_id": portfolio_id}
    ):
        state = _apply_estimate(state, symbol, side, size, est_price)
    return state


# --- operator controls ----------------------------------------------------------------


def operator_action(
    db: Database,
    settings: Settings,
    action: str,
    clock: Callable[[], datetime],
    reason: str | None = None,
) -> dict[str, Any]:
    """halt / resume / release-drawdown, recorded as an alert for the audit trail."""
    now = clock()
    with db.transaction() as session:
        locked = lock_portfolio(session, settings, now)
        if action == "halt":
            risk = rules.halt(locked.risk, reason or "", now)
            message = f"trading halted by operator: {reason or 'no reason given'}"
        elif action == "resume":
            risk = rules.resume(locked.risk)
            message = "trading resumed by operator"
        elif action == "release-drawdown":
            risk = rules.release_drawdown(locked.risk)
            message = "drawdown halt released by operator"
        else:
            raise ValueError(f"unknown action {action!r}")
        changed = risk != locked.risk
        if changed:  # only what really changed goes into the audit trail
            level = AlertLevel.CRITICAL if action == "halt" else AlertLevel.WARNING
            alert = Alert(AlertCode.RISK_LIMIT, level, message, now)
            store_alerts(session, [alert], source="operator", run_id=None)
            save_risk(locked.row, risk, now)
    return {"action": action, "changed": changed, "state": asdict(risk)}
