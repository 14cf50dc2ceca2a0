"""Alerts with their Acknowledge button, the operator controls, the paper accounts and their
reset, and the one audit trail of operator actions (panel and CLI)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from kombu.exceptions import OperationalError

from app.extensions import db
from app.format import money_text
from app.services import admin_queries, operator, queries
from app.services.accounts import list_accounts
from app.web.admin import bp, read_session
from app.web.admin.params import choice_arg, page_number
from app.web.auth import current_actor

RESULT = {
    "halt": ("trading halted", "trading was already halted"),
    "resume": ("trading resumed", "nothing to resume"),
    "release-drawdown": ("drawdown halt released", "there was no drawdown halt to release"),
}
RESET_WORD = "RESET"


@bp.get("/alerts")
def alerts() -> str:
    open_only = choice_arg("open", ("0", "1"), "0") == "1"
    page = admin_queries.alerts_page(read_session(), page_number(), open_only=open_only)
    return render_template("admin/alerts.html", page=page, open_only=open_only)


@bp.post("/alerts/<id:alert_id>/acknowledge")
def acknowledge(alert_id: int) -> ResponseReturnValue:
    if not operator.acknowledge_alert(db, current_actor(), alert_id):
        abort(404, f"no alert {alert_id}")
    flash(f"alert {alert_id} acknowledged", "ok")
    back = {k: v for k, v in request.args.items() if k in ("page", "open")}
    return redirect(url_for("admin.alerts", **back))


def controls_page(reset_error: str | None = None, status: int = 200) -> ResponseReturnValue:
    session = read_session()
    return (
        render_template(
            "admin/controls.html",
            summary=queries.portfolio_summary(session, datetime.now(UTC)),
            history=admin_queries.operator_actions_page(session, page_number()),
            accounts=list_accounts(db),
            capital=current_app.extensions["settings"].initial_capital,
            reset_word=RESET_WORD,
            reset_error=reset_error,
        ),
        status,
    )


@bp.get("/controls")
def controls() -> ResponseReturnValue:
    return controls_page()


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


@bp.post("/controls/paper-reset")
def paper_reset() -> ResponseReturnValue:
    """Close the active paper account and open a new one with INITIAL_CAPITAL, once the
    operator has typed RESET (checked here, not in the browser)."""
    typed = request.form.get("confirm", "").strip()
    if typed != RESET_WORD:
        return controls_page(
            f"Nothing was reset: type {RESET_WORD} in the confirmation field to reset the "
            f"paper account (you typed {typed!r}).",
            400,
        )
    settings = current_app.extensions["settings"]
    try:
        result = operator.reset_paper(db, settings, current_actor(), request.form.get("reason"))
    except ValueError as exc:
        return controls_page(f"Nothing was reset: {exc}.", 400)
    opened, closed = result["opened"], result["closed"]
    message = f"opened {opened['name']} with {money_text(opened['initial_capital'])}"
    if closed:
        message = (
            f"closed {closed['name']} at {money_text(closed['equity'])} equity "
            f"({closed.get('orders_cancelled', 0)} open orders cancelled); " + message
        )
    flash(message, "ok")
    return redirect(url_for("admin.controls"))
