"""Tick-driven runs on the real Redis broker: a stop crossed sends exactly one market-data task
to the market_data queue; two streamers on one shard (one of them the `cdb stream` process)
send one run per trigger; `cdb stream` ends its errors on one line."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

import celeryconfig
from app.config import load_settings
from app.exchange.simulator import SimulatorServer
from app.stream.state import read_book_ticker, set_stops, set_watched, stream_health, stream_metrics
from app.stream.triggers import CelerySender
from tests.conftest import REDIS_URL
from tests.integration.test_stream import (
    SIM_WS,
    Clock,
    StreamerThread,
    stream_settings,
    wait_until,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_prefix: str, r: redis.Redis) -> Iterator[str]:
    """A key prefix of this test alone (Celery's queue included); removed afterwards."""
    mine = f"{redis_prefix}{uuid.uuid4().hex[:8]}:"
    yield mine
    found = list(r.scan_iter(match=f"{mine}*", count=1000))
    if found:
        r.delete(*found)


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    """Market time starts a second into a minute, so a test stays inside one 60 s trigger
    bucket (and sees no candle close): each trigger has exactly one id."""
    now = time.time_ns() // 1_000_000
    clock = Clock(start=now // 60_000 * 60_000 + 1_000)
    with SimulatorServer(n_symbols=40, seed=11, clock=clock, ws_settings=SIM_WS) as server:
        yield server


@pytest.fixture
def sender(prefix: str, tmp_path: Path) -> Iterator[CelerySender]:
    settings = load_settings(
        env_file=None, redis_url=REDIS_URL, redis_key_prefix=prefix, state_dir=str(tmp_path)
    )
    celery = CelerySender(settings)
    yield celery
    celery.close()


def queued(r: redis.Redis, prefix: str) -> list[dict[str, Any]]:
    """The messages waiting in the market_data queue (kombu's list, under the prefix)."""
    out = []
    for raw in r.lrange(f"{prefix}market_data", 0, -1):
        message = json.loads(raw)
        _args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        out.append({"id": message["headers"]["id"], "task": message["headers"]["task"], **kwargs})
    return out


def stop_above_the_market(r: redis.Redis, prefix: str, symbol: str) -> Decimal:
    book = wait_until(lambda: read_book_ticker(r, prefix, symbol))
    return (book.ask * Decimal("1.01")).quantize(book.ask)


def test_a_tick_crossing_a_held_stop_enqueues_exactly_one_run(sim, r, prefix, sender) -> None:
    set_watched(r, prefix, SYMBOLS)
    settings = stream_settings(prefix, stream_triggers="stop")
    with StreamerThread(settings, sim.ws_url, sender=sender):
        stop = stop_above_the_market(r, prefix, "ETHUSDT")
        set_stops(r, prefix, {"ETHUSDT": stop})
        [message] = wait_until(lambda: queued(r, prefix), 10)
        # The price stays under the stop: every second it fires again, and is recognised.
        wait_until(lambda: stream_metrics(r, prefix)["triggers_total"].get("stop:duplicate"), 10)
        time.sleep(1.0)
        assert len(queued(r, prefix)) == 1
    bucket = sim.clock.start // 60_000
    assert message["task"] == celeryconfig.MARKET_DATA_TASK
    assert message["id"] == f"tick-stop-ETHUSDT-{bucket}"
    assert message["trigger"] == "tick"
    assert f"reached its stop {stop}" in message["reason"]
    assert stream_metrics(r, prefix)["triggers_total"]["stop:sent"] == 1


def start_cdb_stream(
    prefix: str, tmp_path: Path, *args: str, **extra_env: str
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEXC_", "CDB_"))}
    env.update(
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=prefix,
        STATE_DIR=str(tmp_path),
        CDB_ENV_FILE=str(tmp_path / "none.env"),
        LOG_LEVEL="INFO",
    )
    env.update(extra_env)
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "stream", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_streamers_on_one_shard_send_one_run_per_trigger(
    sim, r, prefix, sender, tmp_path
) -> None:
    set_watched(r, prefix, SYMBOLS)
    # The same trigger settings as `cdb stream`'s defaults (both must agree on the buckets).
    settings = stream_settings(prefix, stream_triggers="move,candle,stop")
    process = start_cdb_stream(prefix, tmp_path, "--shard", "0/1", "--ws-url", sim.ws_url)
    try:
        with StreamerThread(settings, sim.ws_url, sender=sender):
            wait_until(lambda: stream_health(r, prefix)["streamers"] == 2, 20)
            wait_until(lambda: stream_health(r, prefix)["connected"] == 4, 10)
            stop = stop_above_the_market(r, prefix, "ETHUSDT")
            set_stops(r, prefix, {"ETHUSDT": stop})
            wait_until(lambda: queued(r, prefix), 10)
            # SOLUSDT jumps 3 %: a move (sent once the 5 s minimum gap has passed).
            httpx.post(
                f"{sim.url}/_sim/scenarios", json={"symbol": "SOLUSDT", "price_factor": "1.03"}
            ).raise_for_status()
            wait_until(lambda: any("-move-SOLUSDT-" in m["id"] for m in queued(r, prefix)), 15)
            wait_until(
                lambda: (
                    (t := stream_metrics(r, prefix)["triggers_total"]).get("move:sent")
                    and t.get("stop:duplicate", 0) >= 4
                ),
                10,
            )
            ids = Counter(m["id"] for m in queued(r, prefix))
            metrics = stream_metrics(r, prefix)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr[-2000:]
    assert all(n == 1 for n in ids.values()), ids
    assert sum(1 for i in ids if i.startswith("tick-stop-ETHUSDT-")) == 1
    assert sum(1 for i in ids if i.startswith("tick-move-SOLUSDT-")) == 1
    triggers = metrics["triggers_total"]
    assert triggers["stop:sent"] == 1 and triggers["move:sent"] == 1
    # The other streamer saw the same triggers and stood back.
    assert triggers.get("move:duplicate", 0) + triggers.get("move:debounced", 0) >= 1
    # The process logged JSON lines on stderr and said goodbye in its status.
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert lines and all(line["service"] == "stream" for line in lines)
    assert any(line["message"] == "streamer stopped" for line in lines)
    assert stream_health(r, prefix)["streamers"] == 0


def test_cdb_stream_errors_are_one_line(prefix, tmp_path) -> None:
    bad_shard = start_cdb_stream(prefix, tmp_path, "--shard", "2/2")
    no_redis = start_cdb_stream(
        prefix, tmp_path, "--ws-url", "ws://127.0.0.1:9/ws", REDIS_URL="redis://127.0.0.1:1/0"
    )
    (_, shard_err), (_, redis_err) = (p.communicate(timeout=60) for p in (bad_shard, no_redis))
    assert bad_shard.returncode == 2
    assert shard_err.count("\n") == 1 and shard_err.startswith("error: Invalid value for '--shard'")
    assert no_redis.returncode == 1
    last = redis_err.strip().splitlines()[-1]
    assert last.startswith("error: cannot reach the broker at redis://127.0.0.1:1/0")
