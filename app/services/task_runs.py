"""Every Celery task run, recorded from Celery's signals into task_runs."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

import celeryconfig
from app.extensions import Database
from app.models import TaskRun
from app.services.metrics import observe_task_end
from app.services.store import upsert

log = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def record_start(db: Database, task: Any, task_id: str, args: Any, kwargs: Any) -> None:
    request = task.request
    delivery = getattr(request, "delivery_info", None) or {}
    now = datetime.now(UTC)
    row = {
        "task_id": task_id,
        "name": task.name,
        "queue": delivery.get("routing_key"),
        "args": _jsonable(list(args or [])),
        "kwargs": _jsonable(dict(kwargs or {})),
        "state": "STARTED",
        "started_at": now,
        "parent_task_id": getattr(request, "parent_id", None),
        "root_task_id": getattr(request, "root_id", None),
        "rerun_of": _rerun_of(request),
        "attempts": 1,
    }
    try:
        with db.transaction() as session:
            existing = session.scalar(select(TaskRun).where(TaskRun.task_id == task_id))
            if existing is None:
                upsert(session, TaskRun, [row], ["task_id"], update=False)
            else:
                if existing.state != "PENDING":  # delivered again: worker lost, or re-sent
                    existing.attempts += 1
                existing.state, existing.started_at = "STARTED", now
                existing.queue = existing.queue or row["queue"]
                existing.parent_task_id = existing.parent_task_id or row["parent_task_id"]
                existing.root_task_id = existing.root_task_id or row["root_task_id"]
                existing.finished_at = existing.error = existing.traceback = None
    except SQLAlchemyError:
        log.exception("could not record the start of task %s", task_id)


def record_end(
    db: Database,
    task_id: str,
    state: str,
    result: Any = None,
    error: str | None = None,
    traceback: str | None = None,
) -> None:
    now = datetime.now(UTC)
    try:
        with db.transaction() as session:
            run = session.scalar(select(TaskRun).where(TaskRun.task_id == task_id))
            if run is None:
                return
            if error is not None or run.state != "FAILURE":
                run.state = state
            observe_task_end(session, run, now)
            run.finished_at = now
            run.runtime_ms = int((now - run.started_at).total_seconds() * 1000)
            if result is not None:
                run.result = json.dumps(result, default=str)[:2000]
            if error is not None:
                run.error, run.traceback = error[:4000], (traceback or "")[:20000]
    except SQLAlchemyError:
        log.exception("could not record the end of task %s", task_id)


def _rerun_of(request: Any) -> str | None:
    value = getattr(request, RERUN_HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(RERUN_HEADER)
    return value


RERUN_HEADER = "cdb_rerun_of"
# The tasks a person may send again: the pipeline's stages and the markets refresh.
RERUNNABLE = (
    celeryconfig.MARKET_DATA_TASK,
    celeryconfig.REFRESH_MARKETS_TASK,
    celeryconfig.SIGNALS_TASK,
    celeryconfig.RISK_TASK,
    celeryconfig.EXECUTION_TASK,
)


class TaskRunNotFound(LookupError):
    pass


class NotRerunnable(ValueError):
    """The recorded task is not one of the pipeline's tasks."""


def record_pending(
    db: Database,
    task_id: str,
    name: str,
    args: list[Any],
    kwargs: dict[str, Any],
    rerun_of: str | None = None,
) -> None:
    """A task just sent: its row exists before a worker takes it (a worker's row wins)."""
    with db.transaction() as session:
        upsert(
            session,
            TaskRun,
            [
                {
                    "task_id": task_id,
                    "name": name,
                    "queue": None,
                    "args": args,
                    "kwargs": kwargs,
                    "state": "PENDING",
                    "started_at": datetime.now(UTC),
                    "parent_task_id": None,
                    "root_task_id": None,
                    "rerun_of": rerun_of,
                    "attempts": 1,
                }
            ],
            ["task_id"],
            update=False,
        )


def rerun(db: Database, celery: Any, task_id: str) -> str:
    """Send the same task with the same arguments to its queue as a new, linked run.

    Safe for every stage: each is idempotent by its keys, so re-running an execution task
    never fills an order twice. Sent first, then recorded as PENDING: when the broker is
    down, kombu's OperationalError reaches the caller and no row is left behind. Returns
    the new task id.
    """
    with db.transaction() as session:
        original = session.scalar(select(TaskRun).where(TaskRun.task_id == task_id))
        if original is None:
            raise TaskRunNotFound(f"no task run {task_id}")
        name, args, kwargs = original.name, list(original.args), dict(original.kwargs)
    if name not in RERUNNABLE:
        raise NotRerunnable(
            f"{name} is not a pipeline task; only {', '.join(RERUNNABLE)} can be re-run"
        )
    new_id = str(uuid.uuid4())
    celery.send_task(
        name, args=args, kwargs=kwargs, task_id=new_id, headers={RERUN_HEADER: task_id}
    )
    record_pending(db, new_id, name, args, kwargs, rerun_of=task_id)
    log.info("task re-run", extra={"task": name, "task_id": new_id, "rerun_of": task_id})
    return new_id
