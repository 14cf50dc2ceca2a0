"""Signal, risk and execution tasks: thin adapters, each handing the run id to the next stage.

A stage hands on whenever the next stage's work for the run was not done when it committed —
also when it was redelivered or re-run and found its own work done — so a lost hand-off is
sent again."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from flask import current_app

import celeryconfig
from app.extensions import db
from app.faults import crash_point
from app.services.execution import execute_run
from app.services.risk import decide_run
from app.services.signals import run_signals
from workers.clock import utcnow
from workers.policy import RETRY


def hand_on(task: Any, run_id: int, stage: str, following: str | None) -> None:
    """Send `following` (the stage whose mark was missing when `stage` committed), if any."""
    crash_point(f"{stage}.after_commit")
    if following is not None:
        task.app.send_task(celeryconfig.STAGE_TASKS[following], args=[run_id])


@shared_task(name=celeryconfig.SIGNALS_TASK, bind=True, **RETRY)
def signals_run(self, run_id: int) -> int:
    following = run_signals(db, current_app.extensions["settings"], run_id, utcnow, self.request.id)
    hand_on(self, run_id, "signals", following)
    return run_id


@shared_task(name=celeryconfig.RISK_TASK, bind=True, **RETRY)
def risk_run(self, run_id: int) -> int:
    following = decide_run(db, current_app.extensions["settings"], run_id, utcnow, self.request.id)
    hand_on(self, run_id, "risk", following)
    return run_id


@shared_task(name=celeryconfig.EXECUTION_TASK, bind=True, **RETRY)
def execution_run(self, run_id: int) -> int:
    execute_run(db, current_app.extensions["settings"], run_id, utcnow, self.request.id)
    crash_point("execution.after_commit")
    return run_id
