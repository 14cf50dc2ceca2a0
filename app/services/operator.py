"""What an operator can do, from the admin panel or the CLI alike, each recorded in the one
audit trail (operator_actions) with who, when, what and why.

No Flask here: the callers pass the database, the Celery app and who is acting.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import celeryconfig
from app.config import Settings
from app.extensions import Database
from app.models import AlertRecord
from app.services import task_runs
from app.services.accounts import reset_account
from app.services.audit import REASON_MAX, cli_user, record_action
from app.services.risk import operator_action

log = logging.getLogger(__name__)

CONTROLS = ("halt", "resume", "release-drawdown")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """Who acts: a panel user, or the OS user running `cdb`."""

    username: str
    source: str = "panel"

    @classmethod
    def cli(cls) -> Actor:
        return cls(cli_user(), "cli")


def check_reason(reason: str | None, required: bool = False) -> str | None:
    """A reason as stored: stripped, at most REASON_MAX characters; ValueError otherwise."""
    text = (reason or "").strip()
    if required and not text:
        raise ValueError("a reason is required")
    if len(text) > REASON_MAX:
        raise ValueError(f"the reason is {len(text)} characters long; at most {REASON_MAX}")
    return text or None


def control(
    db: Database,
    settings: Settings,
    actor: Actor,
    action: str,
    reason: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> dict[str, Any]:
    """halt / resume / release-drawdown through risk.operator_action, plus who did it."""
    if action not in CONTROLS:
        raise ValueError(f"unknown control {action!r}; use one of {', '.join(CONTROLS)}")
    reason = check_reason(reason, required=action == "halt")
    result = operator_action(db, settings, action, clock, reason)
    record_action(
        db, actor.username, action, clock(), source=actor.source, reason=reason, outcome=result
    )
    return result


def acknowledge_alert(
    db: Database, actor: Actor, alert_id: int, clock: Callable[[], datetime] = utcnow
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
        record_action(
            db, actor.username, "acknowledge", now, source=actor.source, target=str(alert_id)
        )
    return True


def run_pipeline(
    db: Database, celery: Any, actor: Actor, clock: Callable[[], datetime] = utcnow
) -> str:
    """Send a market-data run now (the rest of the pipeline follows it); returns its task id.

    Sent first, recorded after: when the broker is down nothing is left behind (the caller
    gets kombu's OperationalError). The run is recorded as PENDING so its page exists before
    a worker takes it; when a worker was quicker, its record stands.
    """
    task_id = str(uuid.uuid4())
    trigger = "admin" if actor.source == "panel" else "cli"
    celery.send_task(celeryconfig.MARKET_DATA_TASK, kwargs={"trigger": trigger}, task_id=task_id)
    now = clock()
    task_runs.record_pending(db, task_id, celeryconfig.MARKET_DATA_TASK, [], {"trigger": trigger})
    record_action(db, actor.username, "run-pipeline", now, source=actor.source, target=task_id)
    return task_id


def rerun(
    db: Database,
    celery: Any,
    actor: Actor,
    task_id: str,
    clock: Callable[[], datetime] = utcnow,
) -> str:
    """task_runs.rerun, recorded; raises task_runs.TaskRunNotFound for an unknown id and
    task_runs.NotRerunnable for a task that is not a pipeline stage."""
    new_id = task_runs.rerun(db, celery, task_id)
    record_action(
        db,
        actor.username,
        "rerun",
        clock(),
        source=actor.source,
        target=task_id,
        outcome={"task_id": new_id},
    )
    return new_id


def reset_paper(
    db: Database,
    settings: Settings,
    actor: Actor,
    reason: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> dict[str, Any]:
    """Close the active paper account and open a new one with INITIAL_CAPITAL."""
    reason = check_reason(reason)
    result = reset_account(db, settings, clock, reason or f"reset by {actor.username}")
    record_action(
        db,
        actor.username,
        "paper-reset",
        clock(),
        source=actor.source,
        reason=reason,
        target=str(result["closed"]["account_id"]) if result["closed"] else None,
        outcome={
            "closed": result["closed"]["account_id"] if result["closed"] else None,
            "opened": result["opened"]["account_id"],
        },
    )
    return result
