"""The soak's pipeline, driven in the background for the whole session on services of its own
(PostgreSQL cluster, Redis, simulator), so the other scenarios' outages and storms never
touch it and its minutes cost the suite no wall time.

Fast mode: a market-data run is sent as soon as the previous one is through execution (no
beat). It runs until `stop()` (test_soak, the last scenario, calls it once CDB_SOAK_SECONDS
have passed) or, with CDB_SOAK_RUNS, until that many runs are done.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from app import migrate
from app.exchange.simulator import SimulatorServer
from tests.resilience.procs import Child
from tests.resilience.services import PrivatePostgres, PrivateRedis
from tests.resilience.stack import MarketDriver, Secrets, Stack

SOAK_SECONDS = float(os.environ.get("CDB_SOAK_SECONDS", "90"))
SOAK_RUNS = int(os.environ.get("CDB_SOAK_RUNS", "0"))  # > 0: this many runs, however long
WARM_UP_RUNS = 15  # first imports, pools and caches: memory is compared from here on
SAMPLE_EVERY_SEC = 20.0


class Soak:
    def __init__(self, folder: Path, secrets: Secrets, settings: dict[str, str]) -> None:
        self.folder = folder
        self.pg = PrivatePostgres(secrets.postgres_password)
        self.pg.start()
        self.pg.create_database("cdb_soak")
        migrate.upgrade(self.pg.url("cdb_soak"))
        self.redis = PrivateRedis(secrets.redis_password)
        self.redis.start()
        self.sim = SimulatorServer(n_symbols=30, seed=11, weight_limit=1_000_000).start()
        self.stack = Stack(
            name="soak",
            redis=self.redis,
            pg=self.pg,
            database="cdb_soak",
            sim_url=self.sim.url,
            secrets=secrets,
            folder=folder,
            settings=settings,
        )
        self.driver = MarketDriver(self.sim.url, period=1.5)
        self.worker: Child | None = None
        self.samples: list[dict[str, Any]] = []
        self.sent = 0
        self.slow: list[int] = []  # runs that took longer than 30 s from send to execution
        self.error: str | None = None
        self.started_at = self.ended_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="soak")

    def start(self) -> Soak:
        self.worker = self.stack.start_worker()
        self.driver.__enter__()
        self.started_at = time.time()
        self._thread.start()
        return self

    def sample(self) -> dict[str, Any]:
        assert self.worker is not None
        return {
            "at": round(time.time(), 1),
            "runs": self.sent,
            "rss_kb": self.worker.rss_kb(),
            "redis_keys": self.stack.redis_keys(),
            "redis_used_kb": self.stack.redis_memory_kb(),
        }

    def _loop(self) -> None:
        next_sample = 0.0
        try:
            while not self._stop.is_set() and not (SOAK_RUNS and self.sent >= SOAK_RUNS):
                task_id = self.stack.send_market_data(trigger="soak")
                sent_at = time.monotonic()
                while (run := self.stack.run_done(task_id)) is None:
                    if time.monotonic() - sent_at > 60:
                        raise AssertionError(f"soak run {self.sent + 1} not executed in 60 s")
                    time.sleep(0.05)
                self.sent += 1
                if time.monotonic() - sent_at > 30:
                    self.slow.append(run["id"])
                if self.sent >= WARM_UP_RUNS and time.monotonic() >= next_sample:
                    self.samples.append(self.sample())
                    next_sample = time.monotonic() + SAMPLE_EVERY_SEC
        except Exception as exc:  # reported by test_soak
            self.error = f"{type(exc).__name__}: {exc}"
        self.ended_at = time.time()
        self.samples.append(self.sample())

    def stop(self, timeout: float) -> None:
        """Wait for CDB_SOAK_RUNS runs (or CDB_SOAK_SECONDS), then stop sending."""
        if not SOAK_RUNS:
            time.sleep(max(0.0, self.started_at + SOAK_SECONDS - time.time()))
            self._stop.set()
        self._thread.join(timeout)
        self.driver.__exit__()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(70)
        self.driver.__exit__()
        self.stack.close()
        self.redis.close()
        self.sim.stop()
        self.pg.close()
