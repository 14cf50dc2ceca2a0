"""What the panel's buttons do, each recorded in operator_actions with who and when.

No Flask here: the views pass in the database, the Celery app and the logged-in user.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import celeryconfig
from app.config import Settings
from app.extensions import Database
from app.models import AlertRecord, OperatorAction, TaskRun
from app.services import task_runs
from app.services.risk import operator_action
from app.services.store import upsert

log = logging.getLogger(__name__)

CONTROLS = ("halt", "resume", "release-drawdown")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _record(
    db: Database,
    username: str,
    action: str,
    now: datetime,
    *,
    reason: str | None = None,
    target: str | None = None,
    outcome: dict[str, Any] | None = None,
) -> None:
    with db.transaction() as session:
        session.add(
            OperatorAction(
                action=action,
                username=username,
                reason=reason,
                target=target,
                outcome=json.loads(json.dumps(outcome or {}, default=str)),
                created_at=now,
            )
        )
    log.info("operator action", extra={"action": action, "user": username, "target": target})


def control(
    db: Database,
    settings: Settings,
    username: str,
    action: str,
    reason: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> dict[str, Any]:
    """halt / resume / release-drawdown through risk.operator_action, plus who did it."""
    if action not in CONTROLS:
        raise ValueError(f"unknown control {action!r}; use one of {', '.join(CONTROLS)}")
    result = operator_action(db, settings, action, clock, reason)
    _record(db, username, action, clock(), reason=reason, outcome=result)
    return result


def acknowledge_alert(
    db: Database, username: str, alert_id: int, clock: Callable[[], datetime] = utcnow
) -> bool:
    """Mark the alert acknowledged now; False when there is no such alert. Acknowledging
    again keeps the first time."""
    now = clock()
    with db.transaction() as session:
        alert = session.get(AlertRecord, alert_id)
        if alert is None:
            return False
        first = alert.acknowledged_at is None
        if first:
            alert.acknowledged_at = now
    if first:
        _record(db, username, "acknowledge", now, target=str(alert_id))
    return True


def run_pipeline(
    db: Database, celery: Any, username: str, clock: Callable[[], datetime] = utcnow
) -> str:
    """Send a market-data run now (the rest of the pipeline follows it); returns its task id.

    The run is recorded as PENDING at once so its page exists before a worker takes it;
    when a worker was quicker, its record stands.
    """
    task_id = str(uuid.uuid4())
    celery.send_task(celeryconfig.MARKET_DATA_TASK, kwargs={"trigger": "admin"}, task_id=task_id)
    now = clock()
    with db.transaction() as session:
        upsert(
            session,
            TaskRun,
            [
                {
                    "task_id": task_id,
                    "name": celeryconfig.MARKET_DATA_TASK,
                    "queue": None,
                    "args": [],
                    "kwargs": {"trigger": "admin"},
                    "state": "PENDING",
                    "started_at": now,
                    "attempts": 1,
                }
            ],
            ["task_id"],
            update=False,
        )
    _record(db, username, "run-pipeline", now, target=task_id)
    return task_id


def rerun(
    db: Database, celery: Any, username: str, task_id: str, clock: Callable[[], datetime] = utcnow
) -> str:
    """task_runs.rerun, recorded; raises task_runs.TaskRunNotFound for an unknown id."""
    new_id = task_runs.rerun(db, celery, task_id)
    _record(db, username, "rerun", clock(), target=task_id, outcome={"task_id": new_id})
    return new_id
