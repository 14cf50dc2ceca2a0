"""One pass of the whole pipeline in this process (what `cdb pipeline run-once` does)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from app.config import Settings
from app.exchange.client import MexcClient, RetryEvent
from app.extensions import Database
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
    signals = run_signals(db, settings, summary.id, clock).ids
    orders = decide_run(db, settings, summary.id, clock).ids
    fills = execute_run(db, settings, summary.id, clock)
    return {
        "run_id": summary.id,
        "market_data": summary.status,
        "stored_symbols": summary.stored,
        "signals": len(signals),
        "orders": len(orders),
        "fills": len(fills),
    }
