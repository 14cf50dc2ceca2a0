"""A simulated month of runs, measured: copies of real runs' rows with the month's timestamps,
pruned as beat would prune them when retention exists, then the database is weighed.

Method. The template is the runs the pipeline section just made: every quiet run, and as
many runs with trades as make --month-trade-share of the template (10 %: a signal, an order
and a fill in one run of ten; retention keeps those runs, so the share matters). A
month at MARKET_DATA_INTERVAL_SEC is `days * 86400 / interval` runs; the template's rows are
copied (bench.clone) until there are that many, copy k placed k * len(template) * interval
seconds in the past, so the month ends now. Klines are per minute, not per run: their copies
are blocks of the template's candle span, as many as fit in the month. The copies go in
oldest first, a simulated day at a time; after each day, when the worker knows the pruning
task (`cdb.maintenance.prune`), it is sent as beat would send it — again while a pass
reports that its time budget ran out — followed on PostgreSQL by a plain VACUUM (what
autovacuum does: freed space is reused, files do not shrink). What is left is measured with
the same size queries as the per-run figures. Without the pruning task the month is measured
unpruned, and the report says so.

What the copies do not have: the dead row versions that updates leave behind (the pipeline
updates each run row once per stage, each task run at its end); autovacuum makes that space
reusable, so it stays bounded, but the live database carries some of it.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy import Engine, text

import celeryconfig
from app.config import Settings
from bench.clone import Cloner
from bench.errors import BenchError
from bench.progress import Progress
from bench.sizes import database_bytes, row_counts, table_bytes
from bench.stack import Running

PRUNE_TASK = getattr(celeryconfig, "PRUNE_TASK", "cdb.maintenance.prune")
PRUNE_TIMEOUT_SECONDS = 120
MAX_PRUNE_PASSES = 200


def retention_settings(settings: Settings) -> dict[str, str]:
    return {
        name.upper(): str(getattr(settings, name))
        for name in type(settings).model_fields
        if name.startswith(("retention_", "prune_"))
    }


def prune_registered(running: Running) -> bool:
    replies = running.celery.control.inspect(timeout=2.0).registered() or {}
    return any(PRUNE_TASK in tasks for tasks in replies.values())


@dataclass
class Pruner:
    """Sends the pruning task, as beat does, until a pass says it finished (a pass stops
    after its time budget); then, on PostgreSQL, a plain VACUUM, as autovacuum would."""

    running: Running
    engine: Engine
    passes: int = 0
    seconds: float = 0.0
    deleted: dict[str, int] = field(default_factory=dict)

    def __call__(self) -> None:
        started = time.monotonic()
        for _ in range(MAX_PRUNE_PASSES):
            self.passes += 1
            task_id = str(uuid.uuid4())
            self.running.celery.send_task(PRUNE_TASK, task_id=task_id)
            result = self._wait(task_id)
            for table, count in (result.get("deleted") or {}).items():
                self.deleted[table] = self.deleted.get(table, 0) + int(count)
            if result.get("finished", True):
                break
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM")
        self.seconds += time.monotonic() - started

    def _wait(self, task_id: str) -> dict:
        deadline = time.monotonic() + PRUNE_TIMEOUT_SECONDS
        query = text(
            "SELECT state, error, result FROM task_runs "
            "WHERE task_id = :t AND finished_at IS NOT NULL"
        )
        while time.monotonic() < deadline:
            with self.engine.connect() as conn:
                row = conn.execute(query, {"t": task_id}).first()
            if row is not None:
                if row.state != "SUCCESS":
                    raise BenchError(f"{PRUNE_TASK} ended {row.state}: {row.error}")
                with contextlib.suppress(TypeError, ValueError):
                    answer = json.loads(row.result or "{}")
                    if isinstance(answer, dict):
                        return answer
                return {}
            self.running.check_alive("worker")
            time.sleep(0.1)
        raise BenchError(f"{PRUNE_TASK} did not finish within {PRUNE_TIMEOUT_SECONDS} s")


def simulate_month(
    engine: Engine,
    template_run_ids: list[int],
    days: float,
    interval_sec: int,
    progress: Progress,
    prune: Pruner | None = None,
) -> dict:
    started = time.monotonic()
    cloner = Cloner(engine, template_run_ids)
    per_copy = len(cloner.template)
    month_runs = math.ceil(days * 86400 / interval_sec)
    run_copies = max(0, math.ceil(month_runs / per_copy) - 1)  # the template is copy 0
    shift = per_copy * interval_sec
    spans = {plan.name: cloner.template_span_seconds(plan) for plan in cloner.time_tables}
    time_copies = {
        name: max(0, math.ceil(days * 86400 / span) - 1) for name, span in spans.items() if span
    }
    total_days = max(1, math.ceil(days))
    report = progress.counter("simulated days", total_days)
    try:
        for day in range(total_days, 0, -1):  # oldest first
            low, high = (day - 1) * 86400, day * 86400  # ages in seconds
            cloner.copy_runs(
                max(1, math.ceil(low / shift)), min(run_copies, math.ceil(high / shift) - 1), shift
            )
            for name, copies in time_copies.items():
                span = spans[name]
                cloner.copy_time_keyed(
                    max(1, math.ceil(low / span)),
                    min(copies, math.ceil(high / span) - 1),
                    {name: span},
                )
            if prune is not None:
                prune()
            report(total_days - day + 1)
    finally:
        cloner.drop_temp_tables()
    tables = table_bytes(engine)
    copied = [plan.name for plan in cloner.plans]
    return {
        "days": days,
        "interval_sec": interval_sec,
        "runs_simulated": run_copies * per_copy + per_copy,
        "template_runs": per_copy,
        "copied_tables": copied,
        "klines_template_span_s": {name: round(span) for name, span in spans.items()},
        "pruned": prune is not None,
        "prune_passes": prune.passes if prune else 0,
        "prune_seconds": round(prune.seconds, 1) if prune else None,
        "pruned_rows": prune.deleted if prune else None,
        "rows": row_counts(engine, copied),
        "table_bytes": tables,
        "database_bytes": database_bytes(engine),
        "seconds": round(time.monotonic() - started, 1),
    }
