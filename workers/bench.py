"""No-op tasks for `cdb bench`: the baseline chain the pipeline is compared against.

Four hops over the pipeline's four queues, in the same worker, broker and settings as the
real stages: each hop stamps the wall-clock time it ran, sends the next hop to the next
queue explicitly (as the stages hand on their run id), and the last one pushes the chain's
stamps onto a list in Redis under the worker's key prefix, where `cdb bench` waits for them.
Nothing else: no database access of their own (the worker's task-run recording still runs
for them, as for every task). Inert unless sent; never part of the beat schedule.
"""

from __future__ import annotations

import json
import re
import time

import redis
from celery import shared_task
from flask import current_app

import celeryconfig

HOPS = celeryconfig.QUEUES  # market_data, signals, risk, execution: one hop per queue
TASK = "cdb.bench.{queue}"
RESULT_KEY = "cdb:bench:chains"  # a list, under REDIS_KEY_PREFIX
RESULT_TTL_SECONDS = 3600
_CHAIN_ID = re.compile(r"^[0-9a-f]{32}$")

_clients: dict[str, redis.Redis] = {}


def _redis(url: str) -> redis.Redis:
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=5)
    return client


def _hop(task, queue: str, chain_id: str, stamps: list[float]) -> None:
    now = time.time()
    if not (
        _CHAIN_ID.fullmatch(str(chain_id))
        and isinstance(stamps, list)
        and all(isinstance(stamp, int | float) for stamp in stamps)
    ):
        raise ValueError("a bench chain id is 32 hex digits and its stamps a list of numbers")
    stamps = [*stamps[: len(HOPS)], now]
    position = HOPS.index(queue)
    if position + 1 < len(HOPS):
        following = HOPS[position + 1]
        task.app.send_task(TASK.format(queue=following), args=[chain_id, stamps], queue=following)
        return
    settings = current_app.extensions["settings"]
    key = settings.redis_key_prefix + RESULT_KEY
    done = json.dumps({"chain": chain_id, "stamps": stamps})
    _redis(settings.broker_url).pipeline().rpush(key, done).expire(
        key, RESULT_TTL_SECONDS
    ).execute()


@shared_task(name=TASK.format(queue="market_data"), bind=True, ignore_result=True)
def bench_market_data(self, chain_id: str, stamps: list[float]) -> None:
    _hop(self, "market_data", chain_id, stamps)


@shared_task(name=TASK.format(queue="signals"), bind=True, ignore_result=True)
def bench_signals(self, chain_id: str, stamps: list[float]) -> None:
    _hop(self, "signals", chain_id, stamps)


@shared_task(name=TASK.format(queue="risk"), bind=True, ignore_result=True)
def bench_risk(self, chain_id: str, stamps: list[float]) -> None:
    _hop(self, "risk", chain_id, stamps)


@shared_task(name=TASK.format(queue="execution"), bind=True, ignore_result=True)
def bench_execution(self, chain_id: str, stamps: list[float]) -> None:
    _hop(self, "execution", chain_id, stamps)
