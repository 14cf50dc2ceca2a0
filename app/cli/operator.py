"""The operator's commands: task runs and re-runs, risk controls, paper accounts, settings.
Every action is recorded in the same audit trail as the admin panel's (source "cli")."""

from __future__ import annotations

import sys

import click

from app.cli import views
from app.cli.base import (
    EXIT_USAGE,
    app_database,
    celery_app,
    emit,
    exact_option,
    fail,
    main,
    now,
    settings,
)

TASK_STATES = ("PENDING", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED")


@main.group()
def tasks() -> None:
    """Recorded Celery task runs, and re-running one by hand."""


@tasks.command("list")
@click.option("--name", help="Only this task, e.g. cdb.execution.run.")
@click.option(
    "--state", type=click.Choice(TASK_STATES, case_sensitive=False), help="Only this state."
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.pass_context
def tasks_list(ctx: click.Context, name: str | None, state: str | None, limit: int) -> None:
    """Newest task runs first."""
    from sqlalchemy import select

    from app.models import TaskRun

    _, database = app_database(ctx)
    query = select(TaskRun).order_by(TaskRun.started_at.desc(), TaskRun.id.desc()).limit(limit)
    if name:
        query = query.where(TaskRun.name == name)
    if state:
        query = query.where(TaskRun.state == state.upper())
    with database.transaction() as session:
        emit(
            [
                {
                    "task_id": r.task_id,
                    "name": r.name,
                    "queue": r.queue,
                    "args": r.args,
                    "kwargs": r.kwargs,
                    "state": r.state,
                    "started_at": r.started_at,
                    "runtime_ms": r.runtime_ms,
                    "error": r.error,
                    "rerun_of": r.rerun_of,
                    "attempts": r.attempts,
                }
                for r in session.scalars(query)
            ]
        )


@tasks.command("rerun")
@click.argument("task_id")
@click.pass_context
def tasks_rerun(ctx: click.Context, task_id: str) -> None:
    """Send TASK_ID's task again with the same arguments, as a new run linked to it."""
    from app.services.operator import Actor, rerun
    from app.services.task_runs import NotRerunnable, TaskRunNotFound

    config, database = app_database(ctx)
    try:
        new_id = rerun(database, celery_app(config), Actor.cli(), task_id.strip())
    except TaskRunNotFound as exc:
        fail(f"{exc} (`cdb tasks list` shows the recorded ones)", EXIT_USAGE)
    except NotRerunnable as exc:
        fail(str(exc), EXIT_USAGE)
    emit({"task_id": new_id, "rerun_of": task_id})


@main.group()
def risk() -> None:
    """Operator controls: halt, resume, release a drawdown halt."""


def _control(ctx: click.Context, action: str, reason: str | None = None) -> None:
    from app.services.operator import Actor, control

    config, database = app_database(ctx)
    try:
        emit(control(database, config, Actor.cli(), action, reason, now))
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


@risk.command("halt")
@click.option("--reason", required=True, help="Why; recorded in the audit trail (≤ 500 chars).")
@click.pass_context
def risk_halt(ctx: click.Context, reason: str) -> None:
    """Stop all new orders until `cdb risk resume`."""
    _control(ctx, "halt", reason)


@risk.command("resume")
@click.pass_context
def risk_resume(ctx: click.Context) -> None:
    """Lift an operator halt and any pause (not a drawdown halt)."""
    _control(ctx, "resume")


@risk.command("release-drawdown")
@click.pass_context
def risk_release(ctx: click.Context) -> None:
    """Release a daily-drawdown halt."""
    _control(ctx, "release-drawdown")


@main.group()
def paper() -> None:
    """Paper accounts: start afresh without losing the history."""


@paper.command("reset")
@click.option("--reason", help="Why; recorded in the audit trail (≤ 500 chars).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@exact_option
@click.pass_context
def paper_reset(ctx: click.Context, reason: str | None, yes: bool, exact: bool) -> None:
    """Close the active paper account and open a new one with INITIAL_CAPITAL.

    The old account's orders, fills, positions and equity stay in the database (see them
    with `--account ID`); its unfilled orders are cancelled."""
    from app.services.operator import Actor, reset_paper

    config, database = app_database(ctx)
    if not yes:
        if not sys.stdin.isatty():
            fail("confirm with --yes: there is no terminal to ask on", EXIT_USAGE)
        question = (
            f"Close the active paper account and start a new one with "
            f"{config.initial_capital} USDT?"
        )
        if not click.confirm(question, err=True):
            fail("nothing was reset")
    try:
        result = reset_paper(database, config, Actor.cli(), reason, now)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    emit({key: views.account(value, exact) for key, value in result.items()})


@paper.command("accounts")
@exact_option
@click.pass_context
def paper_accounts(ctx: click.Context, exact: bool) -> None:
    """Every paper account, newest first, with its figures (USDT)."""
    from app.services.accounts import list_accounts

    _, database = app_database(ctx)
    emit([views.account(a, exact) for a in list_accounts(database)])


@main.command("settings")
@click.pass_context
def show_settings(ctx: click.Context) -> None:
    """Every effective setting: its value (secrets masked), where it came from (default, .env,
    environment), its default and what is allowed."""
    from app.services.settings_report import derived, settings_report

    config = settings(ctx)
    emit({"resolved": derived(config), "settings": [r.as_dict() for r in settings_report(config)]})


@main.command("reconcile")
@click.pass_context
def reconcile_now(ctx: click.Context) -> None:
    """One pass of the reconciler now (beat runs it every RECONCILE_INTERVAL_SEC): fail runs
    whose worker was lost, re-drive chains that stopped, expire orders too old to fill, mark
    task runs whose worker died as LOST. Prints what it did."""
    import celeryconfig
    from app.services.reconcile import reconcile

    config, database = app_database(ctx)
    celery = celery_app(config)

    def send(stage: str, run_id: int) -> None:
        celery.send_task(celeryconfig.STAGE_TASKS[stage], args=[run_id])

    report = reconcile(database, config, now, send)
    if report.changed:
        from app.services.audit import cli_user, record_action

        record_action(
            database, cli_user(), "reconcile", now(), source="cli", outcome=report.as_dict()
        )
    emit(report.as_dict())


@main.command("prune")
@click.option(
    "--budget",
    default=60.0,
    show_default=True,
    type=click.FloatRange(1, 3600),
    help="Seconds to spend at most; run again to go on.",
)
@click.pass_context
def prune_now(ctx: click.Context, budget: float) -> None:
    """Delete what is past its retention window now (beat does it every PRUNE_INTERVAL_SEC):
    old snapshots, candles, task runs, quiet runs and verdicts; equity thinned to hourly.
    Orders, fills, signals and risk decisions are never deleted. Prints what went."""
    from app.services.retention import prune

    config, database = app_database(ctx)
    emit(prune(database, config, now, budget).as_dict())
