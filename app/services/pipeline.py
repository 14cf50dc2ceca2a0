"""One pass of the whole pipeline in this process (what `cdb pipeline run-once` does)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select

from app.config import Settings
from app.exchange.client import MexcClient, RetryEvent
from app.extensions import Database
from app.models import FillRecord, Order, SignalRecord
from app.services.execution import execute_run
from app.services.market_data import run_market_data
from app.services.risk import decide_run
from app.services.signals import run_signals


def run_once(
    db: Database,
    settings: Settings,
    client: MexcClient,
    clock: Callable[[], datetime],
    retries: list[RetryEvent] | None = None,
) -> dict[str, Any]:
    summary = run_market_data(
        db,
        settings,
        client,
        run_key=f"cli-{uuid.uuid4()}",
        trigger="cli",
        clock=clock,
        retries=retries,
    )
    run_signals(db, settings, summary.id, clock)
    decide_run(db, settings, summary.id, clock)
    execute_run(db, settings, summary.id, clock)
    with db.transaction() as session:
        signals, orders, fills = session.execute(_COUNTS, {"run_id": summary.id}).one()
    return {
        "run_id": summary.id,
        "market_data": summary.status,
        "stored_symbols": summary.stored,
        "signals": signals,
        "orders": orders,
        "fills": fills,
    }


# The run's signals, orders and fills, counted once the run is through.
_RUN_ORDERS = select(Order.id).where(Order.run_id == bindparam("run_id"))
_COUNTS = select(
    select(func.count(SignalRecord.id))
    .where(SignalRecord.run_id == bindparam("run_id"))
    .scalar_subquery(),
    select(func.count()).select_from(_RUN_ORDERS.subquery()).scalar_subquery(),
    select(func.count(FillRecord.id)).where(FillRecord.order_id.in_(_RUN_ORDERS)).scalar_subquery(),
)
