"""Per-run stage timings, read from what the workers recorded in `task_runs`.

A stage's task run is stamped at `task_prerun` (started) and `task_postrun` (finished); the
later stages of a run are the task runs whose `root_task_id` is the market-data task's id (the
run's `run_key`). From those, per run:

  stage time     finished - started of each stage's task
  hand-off       next stage started - this stage finished (queue + delivery; may be < 0 by
                 a few ms: a stage sends the next one before its own finish is stamped)
  chain          market data finished -> execution finished (the "post-fetch chain")
  end to end     market data started  -> execution finished; the fill is committed just
                 before the execution task's finish is stamped (no commit time is stored)
  pipeline time  end to end less the market-data task's waits on MEXC (recorded by the run
                 as `mexc_wait_ms`: the all-tickers answer, and the per-symbol requests'
                 wall time)
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, bindparam, text

import celeryconfig
from bench.stats import summary

STAGES = celeryconfig.QUEUES
STAGE_OF = {task: stage for stage, task in celeryconfig.STAGE_TASKS.items()}


@dataclass
class RunTiming:
    run_key: str
    run_id: int | None = None
    status: str | None = None
    universe_size: int = 0
    screened: int = 0
    started: dict[str, datetime] = field(default_factory=dict)
    finished: dict[str, datetime] = field(default_factory=dict)
    orders: int = 0
    fills: int = 0
    signals: int = 0
    source: str | None = None  # where market data came from: "rest" or "stream"
    mexc_wait_ms: float | None = None  # how long the market-data task waited on MEXC

    @property
    def pipeline_ms(self) -> float | None:
        """End to end without the waits on MEXC's answers: the pipeline's own time."""
        if self.mexc_wait_ms is None:
            return None
        return self.e2e_ms - self.mexc_wait_ms

    @property
    def complete(self) -> bool:
        return all(stage in self.started and stage in self.finished for stage in STAGES)

    def stage_ms(self, stage: str) -> float:
        return _ms(self.finished[stage] - self.started[stage])

    def handoff_ms(self, stage: str, following: str) -> float:
        return _ms(self.started[following] - self.finished[stage])

    @property
    def chain_ms(self) -> float:
        return _ms(self.finished["execution"] - self.finished["market_data"])

    @property
    def e2e_ms(self) -> float:
        return _ms(self.finished["execution"] - self.started["market_data"])


def _ms(delta) -> float:  # type: ignore[no-untyped-def]
    return delta.total_seconds() * 1000


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def read_timings(engine: Engine, run_keys: Sequence[str]) -> list[RunTiming]:
    """The timings of these runs, in the order given (the first attempt of each stage)."""
    runs = {key: RunTiming(key) for key in run_keys}
    tasks = text(
        "SELECT task_id, root_task_id, name, started_at, finished_at FROM task_runs "
        "WHERE task_id IN :keys OR root_task_id IN :keys ORDER BY started_at"
    ).bindparams(bindparam("keys", expanding=True))
    info = text(
        "SELECT r.run_key, r.id, r.status, r.universe_size, r.screened_symbols, r.parameters, "
        "(SELECT count(*) FROM signals s WHERE s.run_id = r.id) AS signals, "
        "(SELECT count(*) FROM orders o WHERE o.run_id = r.id) AS orders, "
        "(SELECT count(*) FROM fills f JOIN orders o ON o.id = f.order_id "
        " WHERE o.run_id = r.id) AS fills "
        "FROM market_data_runs r WHERE r.run_key IN :keys"
    ).bindparams(bindparam("keys", expanding=True))
    keys = list(run_keys)
    with engine.connect() as conn:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            for row in conn.execute(tasks, {"keys": chunk}):
                stage = STAGE_OF.get(row.name)
                key = row.task_id if stage == "market_data" else row.root_task_id
                timing = runs.get(key)
                if stage is None or timing is None or stage in timing.started:
                    continue
                timing.started[stage] = _utc(row.started_at)
                if row.finished_at is not None:
                    timing.finished[stage] = _utc(row.finished_at)
            for row in conn.execute(info, {"keys": chunk}):
                timing = runs[row.run_key]
                timing.run_id, timing.status = row.id, row.status
                timing.universe_size = row.universe_size or 0
                screened = row.screened_symbols
                if isinstance(screened, str):  # SQLite hands JSON back as text
                    screened = json.loads(screened)
                timing.screened = len(screened) if isinstance(screened, list) else 0
                parameters = row.parameters
                if isinstance(parameters, str):
                    parameters = json.loads(parameters)
                if isinstance(parameters, dict):
                    timing.source = parameters.get("source")
                    timing.mexc_wait_ms = parameters.get("mexc_wait_ms")
                timing.signals, timing.orders, timing.fills = row.signals, row.orders, row.fills
    return [runs[key] for key in run_keys]


def latency_figures(timings: Sequence[RunTiming]) -> dict:
    """Stage, hand-off, chain and end-to-end summaries over the complete runs."""
    complete = [t for t in timings if t.complete]
    return {
        "runs": len(timings),
        "complete_runs": len(complete),
        "runs_with_fills": sum(1 for t in complete if t.fills),
        "market_data_sources": dict(Counter(str(t.source) for t in complete)),
        "signals": sum(t.signals for t in complete),
        "orders": sum(t.orders for t in complete),
        "fills": sum(t.fills for t in complete),
        "stage_ms": {s: summary([t.stage_ms(s) for t in complete]) for s in STAGES},
        "handoff_ms": {
            f"{a}->{b}": summary([t.handoff_ms(a, b) for t in complete])
            for a, b in itertools.pairwise(STAGES)
        },
        "chain_ms": summary([t.chain_ms for t in complete]),
        "e2e_ms": summary([t.e2e_ms for t in complete]),
        "e2e_with_fills_ms": summary([t.e2e_ms for t in complete if t.fills]),
    }
