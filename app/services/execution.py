"""The execution stage: paper fills for a run's approved orders, exactly once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from app.config import Settings
from app.domain import risk as rules
from app.domain.paper import OrderRejected, PaperBroker
from app.domain.portfolio import affordable_qty, apply_fill, daily_pnl, mark_to_market, roll_day
from app.domain.trading import Alert, AlertCode, AlertLevel, Side
from app.events import validate
from app.extensions import Database
from app.faults import crash_point
from app.models import EquitySnapshot, FillRecord, Order
from app.services import counters
from app.services.alerts import store_alerts
from app.services.market_view import latest_prices, market_views
from app.services.portfolio import lock_portfolio, save_risk, save_state
from app.services.stages import check_stage_message, load_run, mark_done, too_old
from app.services.store import upsert

log = logging.getLogger(__name__)


def execute_run(
    db: Database,
    settings: Settings,
    run_id: int,
    clock: Callable[[], datetime],
    task_id: str | None = None,
) -> None:
    """Fill the run's new orders against the run's stored books.

    The portfolio lock serialises executions; an order is filled only while its status is
    "new", and fills.order_id is unique: a redelivered or re-run task fills nothing twice.
    """
    check_stage_message(run_id)
    limits = rules.RiskLimits.from_settings(settings)
    broker = PaperBroker(settings.max_slippage_pct)
    now = clock()
    max_age = timedelta(seconds=settings.data_stale_timeout_sec)
    with db.transaction() as session:
        run = load_run(session, run_id)
        locked = lock_portfolio(session, settings, now)
        state, risk, stops = locked.state, locked.risk, dict(locked.stops)
        tally = counters.Tally()
        filled = 0
        orders = session.scalars(
            select(Order)
            .where(
                Order.run_id == run_id, Order.status == "new", Order.portfolio_id == locked.row.id
            )
            .order_by(Order.id)
        ).all()
        # The typical spread is the risk layers' business: a fill walks the book as it is.
        views = market_views(
            session, run_id, (order.symbol for order in orders), typical_spread=False
        )
        for order in orders:
            market, rules_ = views.get(order.symbol, (None, None))
            side = Side(order.side)
            try:
                if market is None or rules_ is None:
                    raise OrderRejected("no_book", f"no stored book or rules for {order.symbol}")
                age = now - market.data_time
                if age > max_age:
                    raise OrderExpired(
                        f"the book is {age.total_seconds():.0f} s old, more than "
                        f"DATA_STALE_TIMEOUT_SEC={settings.data_stale_timeout_sec} s: not filled "
                        "at old prices"
                    )
                size = order.size
                if side is Side.BUY and market.best_ask is not None:
                    # The broker refuses anything worse than this price, so this much is payable.
                    worst = market.best_ask * (1 + settings.max_slippage_pct)
                    payable = affordable_qty(state, worst, rules_.taker_fee, rules_.qty_precision)
                    size = min(size, payable)
                fill = broker.market_order(order.symbol, side, size, market, rules_)
            except OrderExpired as expired:
                expire_order(tally, order, str(expired), now)
                continue
            except OrderRejected as rejected:
                _reject(session, tally, order, rejected, run_id, now)
                if rejected.reason == "slippage":
                    risk, alerts = rules.trip_breaker(risk, limits, now, rejected.detail)
                    store_alerts(session, alerts, source="execution", run_id=run_id, tally=tally)
                continue
            state, realized = apply_fill(state, fill)
            upsert(
                session,
                FillRecord,
                [
                    {
                        "order_id": order.id,
                        "symbol": fill.symbol,
                        "side": str(fill.side),
                        "qty": fill.qty,
                        "price": fill.avg_price,
                        "notional": fill.notional,
                        "fee": fill.fee,
                        "slippage_pct": fill.slippage_pct,
                        "realized_pnl": realized,
                        "filled_at": now,
                        "task_id": task_id,
                    }
                ],
                ["order_id"],
                update=False,
            )
            order.status, order.updated_at = "filled", now
            tally.order_moved(order, "new", "filled")
            tally.add("fills", side=order.side)
            filled += 1
            if side is Side.BUY:
                stops[order.symbol] = rules.stop_price(
                    state.positions[order.symbol].avg_entry, limits
                )
            validate(
                "order_result", result_payload(order.id, "FILLED", fill.avg_price, fill.fee, now)
            )

        # The held symbols' prices came with the lock; only a symbol bought now is read.
        bought = [symbol for symbol in state.positions if symbol not in locked.latest]
        prices = {**locked.latest, **latest_prices(session, bought)}
        state = roll_day(mark_to_market(state, prices), now)
        risk, alerts = rules.check_state(state, risk, limits, now)
        store_alerts(session, alerts, source="execution", run_id=run_id, tally=tally)
        save_state(session, locked, state, now, stops)
        save_risk(locked.row, risk, now)
        if not too_old(run, now, settings.data_stale_timeout_sec):
            # The run's first snapshot stands: a late re-run never overwrites it, and a run
            # too old by now takes none (newer runs have their own).
            upsert(
                session,
                EquitySnapshot,
                [
                    {
                        "portfolio_id": locked.row.id,
                        "run_id": run_id,
                        "equity": state.equity,
                        "cash": state.cash,
                        "exposure": state.exposure,
                        "drawdown_pct": state.daily_drawdown_pct,
                        "daily_pnl": daily_pnl(state),
                        "taken_at": now,
                    }
                ],
                ["portfolio_id", "run_id"],
                update=False,
            )
        tally.write(session)
        mark_done(session, run, "execution", now)
        crash_point("execution.before_commit")
    log.info(
        "orders executed",
        extra={
            "run_id": run_id,
            "orders": len(orders),
            "fills": filled,
            "equity": str(state.equity),
        },
    )


def result_payload(
    order_id: int,
    status: str,
    price: Decimal | None,
    fees: Decimal,
    now: datetime,
    reason: str | None = None,
) -> dict:
    return {
        "order_id": order_id,
        "status": status,
        "fill_price": None if price is None else format(price, "f"),
        "fees": format(fees, "f"),
        "timestamp": now.isoformat(),
        "reason": reason,
    }


class OrderExpired(Exception):
    """The order can no longer be filled: the data it would be filled against is too old."""


def expire_order(tally: counters.Tally, order: Order, reason: str, now: datetime) -> None:
    order.status, order.updated_at = "expired", now
    tally.order_moved(order, "new", "expired")
    order.reject_reason = f"expired: {reason}"
    validate("order_result", result_payload(order.id, "EXPIRED", None, Decimal(0), now, reason))
    log.warning("order expired", extra={"order_id": order.id, "reason": order.reject_reason})


def _reject(
    session: Any,
    tally: counters.Tally,
    order: Order,
    rejected: OrderRejected,
    run_id: int,
    now: datetime,
) -> None:
    order.status, order.updated_at = "rejected", now
    tally.order_moved(order, "new", "rejected")
    order.reject_reason = f"{rejected.reason}: {rejected.detail}"
    validate(
        "order_result",
        result_payload(order.id, "REJECTED", None, Decimal(0), now, order.reject_reason),
    )
    log.warning("order rejected", extra={"order_id": order.id, "reason": order.reject_reason})
    if rejected.reason in ("below_min_qty", "below_min_notional", "bad_qty"):
        return
    alert = Alert(
        AlertCode.RISK_LIMIT,
        AlertLevel.WARNING,
        f"order {order.client_order_id} for {order.symbol} rejected: {order.reject_reason}",
        now,
        order.symbol,
    )
    if rejected.reason != "slippage":
        store_alerts(session, [alert], source="execution", run_id=run_id, tally=tally)
