"""Alerts with their Acknowledge button, and the operator controls."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from kombu.exceptions import OperationalError

from app.extensions import db
from app.services import admin_queries, operator, queries
from app.web.admin import bp, read_session
from app.web.admin.views import page_number
from app.web.auth import current_actor

RESULT = {
    "halt": ("trading halted", "trading was already halted"),
    "resume": ("trading resumed", "nothing to resume"),
    "release-drawdown": ("drawdown halt released", "there was no drawdown halt to release"),
}


@bp.get("/alerts")
def alerts() -> str:
    open_only = request.args.get("open") == "1"
    page = admin_queries.alerts_page(read_session(), page_number(), open_only=open_only)
    return render_template("admin/alerts.html", page=page, open_only=open_only)


@bp.post("/alerts/<int:alert_id>/acknowledge")
def acknowledge(alert_id: int) -> ResponseReturnValue:
    if not operator.acknowledge_alert(db, current_actor(), alert_id):
        abort(404, f"no alert {alert_id}")
    flash(f"alert {alert_id} acknowledged", "ok")
    back = {k: v for k, v in request.args.items() if k in ("page", "open")}
    return redirect(url_for("admin.alerts", **back))


@bp.get("/controls")
def controls() -> str:
    session = read_session()
    return render_template(
        "admin/controls.html",
        summary=queries.portfolio_summary(session, datetime.now(UTC)),
        history=admin_queries.operator_actions(session, limit=30),
    )


@bp.post("/controls/run-pipeline")
def run_pipeline() -> ResponseReturnValue:
    try:
        task_id = operator.run_pipeline(db, current_app.extensions["celery"], current_actor())
    except OperationalError as exc:
        flash(f"could not send the run: broker unreachable ({exc})", "error")
        return redirect(url_for("admin.controls"))
    flash(f"market-data run sent as {task_id}; the pipeline follows it", "ok")
    return redirect(url_for("admin.task_run", task_id=task_id))


@bp.post("/controls/<any(halt, resume, 'release-drawdown'):action>")
def control(action: str) -> ResponseReturnValue:
    reason = request.form.get("reason", "")
    settings = current_app.extensions["settings"]
    try:
        result = operator.control(db, settings, current_actor(), action, reason)
    except ValueError as exc:
        abort(400, f"{exc}")
    done, unchanged = RESULT[action]
    flash(done if result["changed"] else unchanged, "ok" if result["changed"] else "info")
    return redirect(url_for("admin.controls"))
