"""Signal, risk and execution tasks: thin adapters, each handing the run id to the next stage."""

from __future__ import annotations

from celery import shared_task
from flask import current_app

import celeryconfig
from app.extensions import db
from app.services.execution import execute_run
from app.services.risk import decide_run
from app.services.signals import run_signals
from workers.clock import utcnow


@shared_task(name=celeryconfig.SIGNALS_TASK, bind=True)
def signals_run(self, run_id: int) -> int:
    run_signals(db, current_app.extensions["settings"], run_id, utcnow, self.request.id)
    self.app.send_task(celeryconfig.RISK_TASK, args=[run_id])
    return run_id


@shared_task(name=celeryconfig.RISK_TASK, bind=True)
def risk_run(self, run_id: int) -> int:
    decide_run(db, current_app.extensions["settings"], run_id, utcnow, self.request.id)
    self.app.send_task(celeryconfig.EXECUTION_TASK, args=[run_id])
    return run_id


@shared_task(name=celeryconfig.EXECUTION_TASK, bind=True)
def execution_run(self, run_id: int) -> int:
    execute_run(db, current_app.extensions["settings"], run_id, utcnow, self.request.id)
    return run_id
