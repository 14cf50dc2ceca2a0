"""Flask <-> Celery wiring, in one place: tasks run inside the Flask app context."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery import signals as celery_signals
from flask import Flask

import celeryconfig
from app import heap
from app.config import Settings
from app.extensions import db
from app.logs import configure_logging
from app.services import stream_feed, task_runs
from app.services.exchange import forget_worker_clients


def celery_init_app(app: Flask, settings: Settings) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object(celeryconfig)
    celery.conf.update(celeryconfig.from_settings(settings))
    celery.set_default()
    app.extensions["celery"] = celery
    _connect_signals(settings)
    return celery


_connected = False


def _connect_signals(settings: Settings) -> None:
    global _connected
    if _connected:
        return
    _connected = True

    @celery_signals.setup_logging.connect(weak=False)
    def _json_logging(loglevel: Any = None, **_: Any) -> None:
        # Connecting here stops Celery from installing its own plain-text handlers.
        configure_logging("celery", settings.log_level, settings.secret_values())

    @celery_signals.worker_process_init.connect(weak=False)
    def _fresh_pool(**_: Any) -> None:
        db.dispose_after_fork()
        forget_worker_clients()
        stream_feed.forget_clients()
        heap.settle()  # what start-up made is never collected: full collections stay short

    @celery_signals.worker_ready.connect(weak=False)
    def _settled_consumer(**_: Any) -> None:
        heap.settle()  # the main process, which receives and dispatches every task

    @celery_signals.task_prerun.connect(weak=False)
    def _record_start(task_id: str, task: Task, args: Any = (), kwargs: Any = None, **_: Any):
        task_runs.record_start(db, task, task_id, args, kwargs)

    @celery_signals.task_failure.connect(weak=False)
    def _record_failure(
        task_id: str,
        exception: BaseException,
        einfo: Any = None,
        sender: Any = None,
        args: Any = None,
        kwargs: Any = None,
        **_: Any,
    ):
        error = f"{type(exception).__name__}: {exception}"
        task_runs.record_end(
            db,
            task_id,
            "FAILURE",
            error=error,
            traceback=str(einfo),
            task=sender,
            args=args,
            kwargs=kwargs,
        )

    @celery_signals.task_postrun.connect(weak=False)
    def _record_end(
        task_id: str,
        task: Any = None,
        args: Any = None,
        kwargs: Any = None,
        state: str | None = None,
        retval: Any = None,
        **_: Any,
    ):
        failed = state in ("FAILURE", "RETRY")
        task_runs.record_end(
            db,
            task_id,
            state or "SUCCESS",
            None if failed else retval,
            task=task,
            args=args,
            kwargs=kwargs,
        )
        db.session.remove()
        heap.after_task()

    @celery_signals.task_unknown.connect(weak=False)
    def _record_unknown(
        name: str | None = None, id: str | None = None, exc: Any = None, **_: Any
    ) -> None:
        task_runs.record_rejected(db, id, name, f"unknown task {name!r}: not one of this app's")

    @celery_signals.task_rejected.connect(weak=False)
    def _record_rejected(message: Any = None, exc: Any = None, **_: Any) -> None:
        headers = getattr(message, "headers", None) or {}
        task_id = headers.get("id") if isinstance(headers, dict) else None
        name = headers.get("task") if isinstance(headers, dict) else None
        task_runs.record_rejected(
            db, task_id, name, f"message refused: {type(exc).__name__ if exc else 'unreadable'}"
        )

    @celery_signals.task_revoked.connect(weak=False)
    def _record_revoked(
        sender: Any = None, request: Any = None, expired: bool = False, **_: Any
    ) -> None:
        if request is None or sender is None:
            return
        reason = (
            "expired before a worker ran it (sent with an expiry: the next one supersedes it)"
            if expired
            else "revoked before or while it ran"
        )
        task_runs.record_end(
            db,
            request.id,
            "EXPIRED" if expired else "REVOKED",
            error=reason,
            task=sender,
            args=getattr(request, "args", None),
            kwargs=getattr(request, "kwargs", None),
            ran=False,
        )
