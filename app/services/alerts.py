"""Alerts are stored for audit and logged."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy.orm import Session

from app.domain.trading import Alert
from app.events import validate
from app.models import AlertRecord
from app.services import counters

log = logging.getLogger(__name__)
LOG_LEVELS = {"INFO": logging.INFO, "WARNING": logging.WARNING, "CRITICAL": logging.CRITICAL}


def store_alerts(
    session: Session, alerts: Iterable[Alert], *, source: str, run_id: int | None
) -> int:
    count = 0
    for alert in alerts:
        payload = {
            "code": str(alert.code),
            "level": str(alert.level),
            "message": alert.message,
            "timestamp": alert.timestamp.isoformat(),
        }
        validate("alert", payload)
        session.add(
            AlertRecord(
                code=payload["code"],
                level=payload["level"],
                message=alert.message,
                symbol=alert.symbol,
                run_id=run_id,
                source=source,
                created_at=alert.timestamp,
            )
        )
        counters.bump(session, "alerts", code=payload["code"], level=payload["level"])
        log.log(LOG_LEVELS[payload["level"]], alert.message, extra={"alert": payload["code"]})
        count += 1
    return count
