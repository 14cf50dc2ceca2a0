"""The Celery floor: the baseline's four no-op hops on a bare Celery app.

`celery -A bench.floor worker …` with the worker's own argv and celeryconfig (queues,
routes, acks, prefetch, broker and a key prefix of its own) but none of the application:
no Flask app, no task-run recording, no JSON logging. The baseline chain runs on the real
worker, so it pays the bookkeeping every task pays there (a task_runs row written at the
start and at the end of each hop); this floor is what Celery and Redis alone cost, which
is what the issue's "bare chain" measured. The hop logic mirrors workers/bench.py (it cannot
be imported from there: importing `workers` builds the real worker's app and its signals).
"""

from __future__ import annotations

import json
import time

import redis
from celery import Celery

import celeryconfig
from app.config import load_settings

HOPS = celeryconfig.QUEUES
TASK = "cdb.bench.{queue}"
RESULT_KEY = "cdb:bench:chains"

settings = load_settings()
app = Celery("cdb-bench-floor")
app.config_from_object(celeryconfig)
app.conf.update(celeryconfig.from_settings(settings))
app.conf.beat_schedule = {}
_client = redis.Redis.from_url(settings.broker_url, socket_timeout=5)


def _hop(task, queue: str, chain_id: str, stamps: list[float]) -> None:  # type: ignore[no-untyped-def]
    stamps = [*stamps[: len(HOPS)], time.time()]
    position = HOPS.index(queue)
    if position + 1 < len(HOPS):
        following = HOPS[position + 1]
        task.app.send_task(TASK.format(queue=following), args=[chain_id, stamps], queue=following)
        return
    key = settings.redis_key_prefix + RESULT_KEY
    _client.rpush(key, json.dumps({"chain": chain_id, "stamps": stamps}))


def _register(queue: str) -> None:
    @app.task(name=TASK.format(queue=queue), bind=True, ignore_result=True)
    def hop(self, chain_id: str, stamps: list[float]) -> None:  # type: ignore[no-untyped-def]
        _hop(self, queue, chain_id, stamps)


for _queue in HOPS:
    _register(_queue)
