"""A frozen MEXC feed: the worker rejects the stale data and stores none of it."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.integration.conftest import wait_for_run
from tests.integration.test_market_data_worker import count, fault, send

pytestmark = pytest.mark.integration

STALE_TIMEOUT = 10


@pytest.fixture(scope="module")
def stack_env(stack_env):
    return {**stack_env, "DATA_STALE_TIMEOUT_SEC": str(STALE_TIMEOUT)}


def test_frozen_feed_is_rejected_as_stale(worker, celery_client, engine, sim, clean):
    fault(sim, mode="stale")
    time.sleep(STALE_TIMEOUT + 1)
    run = wait_for_run(engine, send(celery_client))

    assert run["status"] == "failed"
    assert run["universe_size"] > 0
    assert len(run["rejections"]) == run["universe_size"]
    assert all("stale" in r["reason"] for r in run["rejections"])
    assert count(engine, "SELECT count(*) FROM ticker_snapshots") == 0
    assert count(engine, "SELECT count(*) FROM klines") == 0
    assert count(engine, "SELECT count(*) FROM book_snapshots") == 0

    # The feed moves again: the next run is good.
    httpx.delete(f"{sim.url}/_sim/faults").raise_for_status()
    recovered = wait_for_run(engine, send(celery_client))
    assert recovered["status"] == "ok", recovered
    assert count(engine, "SELECT count(*) FROM book_snapshots") == len(recovered["stored_symbols"])
