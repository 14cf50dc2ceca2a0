"""Market-data runs sent by the bench, back to back, instead of beat.

Each run is `cdb.market_data.run` sent to its queue with a task id of our own (the run's
`run_key`); the next one goes out only when the previous one's execution task has finished,
so no run waits in a queue behind another and the latencies are the pipeline's own. (The
memory section keeps `window` runs in flight instead: it wants many runs, not clean
latencies.)

The MEXC request-weight budget: the workers share it through Redis in 10 s windows
(MEXC_WEIGHT_BUDGET, at most 500). A run costs 40 (all tickers) + 2 per fetched symbol, so
runs sent back to back would soon wait for the next window — a wait that beat's 15 s cadence
never meets. Before each run the bench empties the current window's count under its own key
prefix (the simulator's own limit is lifted too): every request still books its weight, as
in production, but no run waits for a window.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis
from sqlalchemy import Engine, text

import celeryconfig
from app.exchange.shared_budget import RedisWeightBudget
from bench.errors import BenchError
from bench.stack import Running

# How often the bench reads whether a run is through. Each read costs ≈ 0.7 ms of the bench's
# CPU and two statements at the server, on the two cores the measured stages run on (the
# bare chains are awaited with a blocking BLPOP, which costs nothing): every 20 ms that was
# ≈ 5 % of a core taken from the pipeline's runs alone. The run's figures come from its
# task_runs, so a later look does not change them; it only leaves a little more idle time
# between runs.
POLL_SECONDS = 0.05
FAILURE_CHECK_EVERY = 25  # polls
RUN_TIMEOUT_SECONDS = 60.0


@dataclass
class RunDriver:
    running: Running
    engine: Engine
    redis_client: redis.Redis
    timeout: float = RUN_TIMEOUT_SECONDS

    def lift_budget(self) -> None:
        """Empty the shared budget's current window (and its neighbours) under our prefix."""
        budget = RedisWeightBudget(
            self.redis_client, key_prefix=self.running.settings.redis_key_prefix
        )
        seconds, _ = self.redis_client.time()  # the budget's clock: Redis's
        window = int(seconds // budget.window_seconds)
        self.redis_client.delete(
            *(f"{budget.key_prefix}{w}" for w in range(window - 1, window + 2))
        )

    def send(self, trigger: str = "manual") -> str:
        self.lift_budget()
        task_id = str(uuid.uuid4())
        self.running.celery.send_task(
            celeryconfig.MARKET_DATA_TASK, kwargs={"trigger": trigger}, task_id=task_id
        )
        return task_id

    def run(self, trigger: str = "manual") -> str:
        """One run, through execution; returns its run key."""
        key = self.send(trigger)
        self.wait(key, execution_finished=True)
        return key

    def runs(
        self,
        count: int,
        before: Callable[[int], None] | None = None,
        after: Callable[[int], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """`count` runs, one after the other; `before(i)`/`after(i)` around run i."""
        keys = []
        for index in range(count):
            if before is not None:
                before(index)
            keys.append(self.run())
            if after is not None:
                after(index)
            if progress is not None:
                progress(index + 1)
        return keys

    def runs_in_flight(
        self, count: int, window: int, progress: Callable[[int], None] | None = None
    ) -> list[str]:
        """`count` runs with up to `window` in flight; returns when all are done."""
        keys: list[str] = []
        pending: list[str] = []
        while len(keys) < count or pending:
            while len(keys) < count and len(pending) < window:
                key = self.send()
                keys.append(key)
                pending.append(key)
            self.wait(pending.pop(0), execution_finished=False)
            if progress is not None:
                progress(len(keys) - len(pending))
        return keys

    def wait(self, key: str, execution_finished: bool) -> None:
        """Until the run's execution stage committed (and, with execution_finished, its task
        run is recorded as finished, so the next run does not overlap its last write)."""
        deadline = time.monotonic() + self.timeout
        run_id = None
        polls = 0
        while time.monotonic() < deadline:
            polls += 1
            with self.engine.connect() as conn:
                if run_id is None:
                    row = conn.execute(_DONE, {"k": key}).first()
                    if row is not None and row.execution_done_at is not None:
                        run_id = row.id
                        if not execution_finished:
                            return
                if run_id is not None:
                    task = conn.execute(
                        _FINISHED, {"n": celeryconfig.EXECUTION_TASK, "k": key}
                    ).first()
                    if task is not None:
                        return
                if polls % FAILURE_CHECK_EVERY == 0:
                    self._check_failures(conn, key)
            time.sleep(POLL_SECONDS)
        raise BenchError(
            f"run {key} did not get through execution within {self.timeout:.0f} s; the worker "
            f"log is {self.running.log_path}"
        )

    def _check_failures(self, conn, key: str) -> None:  # type: ignore[no-untyped-def]
        failed = conn.execute(_FAILED, {"k": key}).first()
        if failed is not None:
            raise BenchError(
                f"{failed.name} failed in a bench run: {failed.error}; the worker log is "
                f"{self.running.log_path}"
            )
        self.running.check_alive("worker")


_DONE = text("SELECT id, execution_done_at FROM market_data_runs WHERE run_key = :k")
_FINISHED = text(
    "SELECT 1 FROM task_runs WHERE name = :n AND root_task_id = :k AND finished_at IS NOT NULL"
)
_FAILED = text(
    "SELECT name, error FROM task_runs WHERE state = 'FAILURE' AND "
    "(task_id = :k OR root_task_id = :k)"
)
