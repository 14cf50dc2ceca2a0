"""Market-data tasks: thin adapters over app.services.market_data."""

from __future__ import annotations

from celery import shared_task
from flask import current_app

import celeryconfig
from app.exchange.client import RetryEvent
from app.extensions import db
from app.services.exchange import worker_client
from app.services.market_data import refresh_markets, run_market_data
from workers.clock import utcnow
from workers.pipeline import hand_on
from workers.policy import RETRY


@shared_task(
    name=celeryconfig.MARKET_DATA_TASK,
    bind=True,
    soft_time_limit=celeryconfig.MARKET_DATA_SOFT_TIME_LIMIT,
    time_limit=celeryconfig.MARKET_DATA_TIME_LIMIT,
    **RETRY,
)
def market_data_run(self, trigger: str = "manual", reason: str | None = None) -> int:
    """Fetch, screen, validate and store one run; returns the run id. `cdb stream` sends
    tick runs with trigger "tick" and the reason (a move, a closed candle, a stop crossed)."""
    settings = current_app.extensions["settings"]
    retries: list[RetryEvent] = []
    with worker_client(settings).reporting_retries_to(retries.append) as client:
        summary = run_market_data(
            db,
            settings,
            client,
            run_key=self.request.id,
            trigger=trigger,
            reason=reason,
            clock=utcnow,
            retries=retries,
        )
    # The next stage runs for every finished run: even one without fresh data must let the
    # risk stage see that the data went stale. A redelivered task that finds its run done
    # sends it again while the signals of the run are not done.
    hand_on(self, summary.id, "market_data", None if summary.signals_done else "signals")
    return summary.id


@shared_task(name=celeryconfig.REFRESH_MARKETS_TASK, **RETRY)
def market_data_refresh_markets() -> int:
    """Refresh trading rules from exchangeInfo; returns how many markets were stored."""
    return refresh_markets(db, worker_client(current_app.extensions["settings"]), utcnow())
