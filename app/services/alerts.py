"""Alerts are stored for audit and logged."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.domain.trading import Alert
from app.events import validate
from app.models import AlertRecord
from app.services import counters

log = logging.getLogger(__name__)
LOG_LEVELS = {"INFO": logging.INFO, "WARNING": logging.WARNING, "CRITICAL": logging.CRITICAL}
_INSERT = insert(AlertRecord.__table__)


def store_alerts(
    session: Session,
    alerts: Iterable[Alert],
    *,
    source: str,
    run_id: int | None,
    tally: counters.Tally | None = None,
) -> int:
    """Validate, store and log the alerts in one insert. Their counters go into `tally`
    when the caller writes one at its end, else they are written here."""
    rows = []
    own = tally is None
    tally = counters.Tally() if tally is None else tally
    for alert in alerts:
        payload = {
            "code": str(alert.code),
            "level": str(alert.level),
            "message": alert.message,
            "timestamp": alert.timestamp.isoformat(),
        }
        validate("alert", payload)
        rows.append(
            {
                "code": payload["code"],
                "level": payload["level"],
                "message": alert.message,
                "symbol": alert.symbol,
                "run_id": run_id,
                "source": source,
                "created_at": alert.timestamp,
                "acknowledged_at": None,
            }
        )
        tally.add("alerts", code=payload["code"], level=payload["level"])
        log.log(LOG_LEVELS[payload["level"]], alert.message, extra={"alert": payload["code"]})
    if rows:
        session.execute(_INSERT, rows)
        if own:
            tally.write(session)
    return len(rows)
