"""Housekeeping on a schedule: the reconciler and retention."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from flask import current_app

import celeryconfig
from app.extensions import db
from app.services.reconcile import reconcile
from app.services.retention import prune
from workers.clock import utcnow
from workers.policy import RETRY


@shared_task(name=celeryconfig.RECONCILE_TASK, bind=True, **RETRY)
def reconcile_run(self) -> dict[str, Any]:
    def send(stage: str, run_id: int) -> None:
        self.app.send_task(celeryconfig.STAGE_TASKS[stage], args=[run_id])

    return reconcile(db, current_app.extensions["settings"], utcnow, send).as_dict()


@shared_task(name=celeryconfig.PRUNE_TASK, **RETRY)
def prune_run() -> dict[str, Any]:
    return prune(db, current_app.extensions["settings"], utcnow).as_dict()
