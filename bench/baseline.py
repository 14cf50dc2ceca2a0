"""The baseline: a bare chain of four no-op tasks (workers/bench.py) over the four stage
queues, on the same worker, broker and settings as the pipeline it is compared with — and
the same hops on a bare Celery app (bench/floor.py), the floor under both.

The bench stamps the time it sends the first hop; each hop stamps when it ran; the last one
pushes the stamps onto a Redis list, where the bench waits for them (BLPOP: no polling).
End to end = send -> fourth hop ran: four hand-offs (the post-fetch chain it is compared with
has three, plus three real stages).

Chains go one at a time, and in the pipeline section they are interleaved with the pipeline
runs (a chain on each worker after every run): whatever else loads the machine then weighs
on the baseline and on the pipeline alike, and the ratio between them holds.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from celery import Celery

from bench.errors import BenchError
from bench.stats import summary

# Defined by workers/bench.py (not imported: importing `workers` builds the worker's app).
TASK = "cdb.bench.{queue}"
RESULT_KEY = "cdb:bench:chains"
HOPS = ("market_data", "signals", "risk", "execution")
WAIT_SECONDS = 30
WARMUP_CHAINS = 10


@dataclass
class Worker:
    """Who runs the chains: a Celery client for its broker and prefix, and a liveness check."""

    celery: Celery
    prefix: str
    check_alive: Callable[[], None]
    log_path: Path | None = None
    stamps: list[list[float]] = field(default_factory=list)

    def chain(self, client: redis.Redis) -> list[float]:
        """One chain, start to end: [sent, hop 1 ran, … hop 4 ran] (epoch seconds)."""
        key = self.prefix + RESULT_KEY
        chain_id = uuid.uuid4().hex
        self.celery.send_task(
            TASK.format(queue=HOPS[0]), args=[chain_id, [time.time()]], queue=HOPS[0]
        )
        answer = client.blpop([key], timeout=WAIT_SECONDS)
        if answer is None:
            self.check_alive()
            raise BenchError(
                f"a baseline chain did not finish within {WAIT_SECONDS} s (does the worker "
                f"load workers/bench.py?); the worker log is {self.log_path}"
            )
        done = json.loads(answer[1])
        if done.get("chain") != chain_id:
            raise BenchError("a baseline chain answered out of turn: is another bench running?")
        return done["stamps"]


@dataclass
class Chains:
    """Chains on several workers, one after the other; `one()` runs one on each."""

    client: redis.Redis
    workers: dict[str, Worker]

    def warm_up(self, count: int = WARMUP_CHAINS) -> None:
        for _ in range(count):
            for worker in self.workers.values():
                worker.chain(self.client)

    def one(self) -> None:
        for worker in self.workers.values():
            worker.stamps.append(worker.chain(self.client))

    def figures(self, name: str) -> dict:
        stamps = self.workers[name].stamps
        hops = {"send->market_data": [(s[1] - s[0]) * 1000 for s in stamps]}
        for position, (a, b) in enumerate(itertools.pairwise(HOPS), start=1):
            hops[f"{a}->{b}"] = [(s[position + 1] - s[position]) * 1000 for s in stamps]
        return {
            "chains": len(stamps),
            "warmup_chains": WARMUP_CHAINS,
            "chain_ms": summary([(s[-1] - s[0]) * 1000 for s in stamps]),
            "after_first_hop_ms": summary([(s[-1] - s[1]) * 1000 for s in stamps]),
            "handoff_ms": {name: summary(values) for name, values in hops.items()},
        }
