"""Every Celery task run, recorded from Celery's signals into task_runs."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.exc import SQLAlchemyError

import celeryconfig
from app.extensions import Database
from app.models import TaskRun
from app.services.metrics import observe_task_end
from app.services.store import INSERTS, upsert

log = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# A failed write of a task run is tried again after these pauses (seconds), then logged as
# an error; the end of a run whose start was never written writes the whole row.
RECORD_RETRY_DELAYS = (0.1, 0.4, 1.0)


def _with_retries(what: str, task_id: str, write: Callable[[], None]) -> bool:
    for delay in (*RECORD_RETRY_DELAYS, None):
        try:
            write()
            return True
        except SQLAlchemyError as exc:
            if delay is None:
                log.error(
                    "could not record the %s of task %s: %s",
                    what,
                    task_id,
                    type(exc).__name__,
                    extra={"task_id": task_id},
                )
                return False
            time.sleep(delay)
    return False


def _start_row(task: Any, task_id: str, args: Any, kwargs: Any, now: datetime) -> dict[str, Any]:
    request = getattr(task, "request", None)
    delivery = getattr(request, "delivery_info", None) or {}
    return {
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


@cache
def _start_statement(dialect: str) -> Any:
    """One statement for a task's start: insert its row, or restart the existing one (a
    redelivery, a retry, a re-sent task) counting the attempt — unless it was PENDING."""
    table = TaskRun.__table__
    statement = INSERTS[dialect](table)
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["task_id"],
        set_={
            "attempts": table.c.attempts + case((table.c.state == "PENDING", 0), else_=1),
            "state": new.state,
            "started_at": new.started_at,
            "queue": func.coalesce(table.c.queue, new.queue),
            "parent_task_id": func.coalesce(table.c.parent_task_id, new.parent_task_id),
            "root_task_id": func.coalesce(table.c.root_task_id, new.root_task_id),
            "finished_at": None,
            "error": None,
            "traceback": None,
        },
    )


# The runs this process started and recorded, by task id: (name, started_at), so their end
# is one UPDATE instead of a read and an update.
_started: dict[str, tuple[str, datetime]] = {}


def record_start(db: Database, task: Any, task_id: str, args: Any, kwargs: Any) -> None:
    """The start of a task run: one statement, committed on its own (autocommit: no BEGIN and
    COMMIT round trips; it runs for every task)."""
    row = _start_row(task, task_id, args, kwargs, datetime.now(UTC))

    def write() -> None:
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(_start_statement(conn.dialect.name), row)

    if _with_retries("start", task_id, write):
        _started[task_id] = (row["name"], row["started_at"])


def record_end(
    db: Database,
    task_id: str,
    state: str,
    result: Any = None,
    error: str | None = None,
    traceback: str | None = None,
    *,
    task: Any = None,
    args: Any = None,
    kwargs: Any = None,
    ran: bool = True,
) -> None:
    """The end of a run; with `task` (and its arguments) a run whose start was never
    written is written whole, so no run goes unrecorded. `ran=False`: revoked or expired
    before it ran. Core statements on one connection: it runs for every task."""
    now = datetime.now(UTC)
    table = TaskRun.__table__
    columns = (table.c.name, table.c.started_at, table.c.finished_at, table.c.state)
    started = _started.pop(task_id, None)

    def end_values(started_at: datetime) -> dict[str, Any]:
        values: dict[str, Any] = {
            "finished_at": now,
            "runtime_ms": int((now - started_at).total_seconds() * 1000),
        }
        if result is not None:
            values["result"] = json.dumps(result, default=str)[:2000]
        if error is not None:
            values["error"], values["traceback"] = error[:4000], (traceback or "")[:20000]
        return values

    def finish_started() -> bool:
        """The usual end of a run this process started: one UPDATE of the unfinished row."""
        name, started_at = started  # type: ignore[misc]
        values = end_values(started_at)
        values["state"] = (  # a recorded FAILURE stays one unless this end brings the error
            state
            if error is not None
            else case((table.c.state == "FAILURE", table.c.state), else_=state)
        )
        with db.engine.begin() as conn:
            updated = conn.execute(
                update(table)
                .where(table.c.task_id == task_id, table.c.finished_at.is_(None))
                .values(**values)
            )
            if updated.rowcount != 1:
                return False  # not there, or ended already (a failure is reported twice)
            if ran:
                observe_task_end(conn, name, started_at, now)
        return True

    def write() -> None:
        if started is not None and finish_started():
            return
        with db.engine.begin() as conn:
            row = conn.execute(select(*columns).where(table.c.task_id == task_id)).first()
            if row is None:
                if task is None:
                    return
                start = _start_row(task, task_id, args, kwargs, now)
                conn.execute(_start_statement(conn.dialect.name), start)
                row = (start["name"], now, None, "STARTED")
            name, started_at, finished_at, old_state = row
            values = end_values(started_at)
            if error is not None or old_state != "FAILURE":
                values["state"] = state
            conn.execute(update(table).where(table.c.task_id == task_id).values(**values))
            if ran and finished_at is None:  # a failure is reported twice: count it once
                observe_task_end(conn, name, started_at, now)

    _with_retries("end", task_id, write)


def record_rejected(db: Database, task_id: str | None, name: str | None, reason: str) -> None:
    """A message the workers refused before running anything: an unknown task name or a
    body that is not a Celery task message. Recorded, so a hostile message leaves a trace."""
    now = datetime.now(UTC)
    task_id = (task_id or f"rejected-{uuid.uuid4()}")[:64]
    row = {
        "task_id": task_id,
        "name": (name or "(undecodable message)")[:128],
        "queue": None,
        "args": [],
        "kwargs": {},
        "state": "REJECTED",
        "started_at": now,
        "finished_at": now,
        "error": reason[:4000],
        "attempts": 1,
    }

    def write() -> None:
        with db.transaction() as session:
            upsert(session, TaskRun, [row], ["task_id"], update=False)

    _with_retries("rejection", task_id, write)


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
