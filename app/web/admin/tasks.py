"""Task runs: a filtered, paged list; one run's details; the Re-run button."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from kombu.exceptions import OperationalError

import celeryconfig
from app.extensions import db
from app.services import admin_queries, operator
from app.services.task_runs import NotRerunnable, TaskRunNotFound
from app.web.admin import bp, read_session
from app.web.admin.params import page_number
from app.web.auth import current_actor

TASK_NAMES = (
    celeryconfig.MARKET_DATA_TASK,
    celeryconfig.REFRESH_MARKETS_TASK,
    celeryconfig.SIGNALS_TASK,
    celeryconfig.RISK_TASK,
    celeryconfig.EXECUTION_TASK,
)
STATES = ("PENDING", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED")
UNFINISHED = ("PENDING", "STARTED", "RETRY")
TIME_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


class FilterError(ValueError):
    pass


def _time(field: str) -> datetime | None:
    raw = request.args.get(field, "").strip()
    if not raw:
        return None
    for pattern in TIME_FORMATS:
        try:
            return datetime.strptime(raw, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise FilterError(f"{field}={raw!r} is not a time; write it as YYYY-MM-DDTHH:MM (UTC)")


def _choice(field: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(field, "").strip()
    if value and value not in allowed:
        raise FilterError(f"{field}={value!r} is not one of {', '.join(allowed)}")
    return value or None


@bp.get("/tasks")
def task_runs() -> ResponseReturnValue:
    try:
        wanted = admin_queries.TaskFilter(
            name=_choice("name", TASK_NAMES),
            state=_choice("state", STATES),
            since=_time("since"),
            until=_time("until"),
        )
    except FilterError as exc:
        page = admin_queries.Page([], 1, admin_queries.PER_PAGE, False)
        return (
            render_template(
                "admin/tasks.html", page=page, error=str(exc), names=TASK_NAMES, states=STATES
            ),
            400,
        )
    page = admin_queries.task_runs_page(read_session(), wanted, page_number())
    return render_template(
        "admin/tasks.html", page=page, error=None, names=TASK_NAMES, states=STATES
    )


@bp.get("/tasks/<task_id:task_id>")
def task_run(task_id: str) -> str:
    session = read_session()
    run = admin_queries.task_run(session, task_id)
    if run is None:
        abort(404, f"no task run {task_id}")
    original = admin_queries.task_run(session, run.rerun_of) if run.rerun_of else None
    return render_template(
        "admin/task.html",
        run=run,
        original=original,
        reruns=admin_queries.operator_actions(session, action="rerun", target=task_id),
        refresh=run.state in UNFINISHED,
    )


@bp.post("/tasks/<task_id:task_id>/rerun")
def rerun(task_id: str) -> ResponseReturnValue:
    celery = current_app.extensions["celery"]
    try:
        new_id = operator.rerun(db, celery, current_actor(), task_id)
    except TaskRunNotFound:
        abort(404, f"no task run {task_id}")
    except NotRerunnable as exc:
        abort(400, str(exc))
    except OperationalError as exc:
        flash(f"could not send the re-run: broker unreachable ({exc})", "error")
        return redirect(url_for("admin.task_run", task_id=task_id))
    flash(f"re-run sent as {new_id}", "ok")
    return redirect(url_for("admin.task_run", task_id=new_id))
