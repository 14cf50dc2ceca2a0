"""Scenario 8: a soak. Market-data runs are sent one after another through the real workers,
each as soon as the previous one's execution is done (fast mode, no beat), while the market
trades: no error, and the workers' memory and the number of Redis keys stay bounded (start,
middle and end compared).

The soak starts with the session and runs in the background of the other scenarios, on a
PostgreSQL cluster, a Redis and a simulator of its own (tests/resilience/soak.py); this test,
the last, stops it once CDB_SOAK_SECONDS (default 90) have passed — in a full suite run that is
the whole session, some 8 minutes. A day of market time at 15 s per run is 5,760 runs:
`CDB_SOAK_RUNS=5760 .venv/bin/pytest -m resilience tests/resilience/test_soak.py` (see
docs/RELIABILITY.md). The pace is bounded by the MEXC weight budget (MEXC_WEIGHT_BUDGET, at most
500 per 10 s; a run weighs 40 + 2 per symbol): about one run per second."""

from __future__ import annotations

import pytest

from tests.resilience.audit import assert_clean
from tests.resilience.scenario import finish, record
from tests.resilience.soak import SOAK_RUNS, SOAK_SECONDS

RSS_GROWTH = 1.15  # the end may exceed the middle by 15 % (+ a fixed slack below)
RSS_SLACK_KB = 16 * 1024
KEYS_SLACK = 5


@pytest.mark.timeout(max(300, SOAK_RUNS * 3 + 200, SOAK_SECONDS + 200))
def test_soak(soak, results, request):
    name = request.node.name
    entry = results.scenario(name)
    entry["started_at"] = soak.started_at
    soak.stop(timeout=max(120, SOAK_RUNS * 3))
    stack = soak.stack
    assert soak.error is None, soak.error
    samples = soak.samples
    elapsed = soak.ended_at - soak.started_at
    errors = stack.rows(
        "SELECT name, state, error FROM task_runs WHERE state <> 'SUCCESS' LIMIT 10"
    )
    failed_runs = stack.scalar("SELECT count(*) FROM market_data_runs WHERE status = 'failed'")
    first, middle, end = samples[0], samples[len(samples) // 2], samples[-1]
    record(
        results,
        name,
        runs=soak.sent,
        seconds=round(elapsed, 1),
        runs_per_second=round(soak.sent / elapsed, 2),
        market_moves=soak.driver.moves,
        samples=samples,
        rss_mb={
            k: round(s["rss_kb"] / 1024, 1)
            for k, s in (("start", first), ("middle", middle), ("end", end))
        },
        redis_keys={
            k: s["redis_keys"] for k, s in (("start", first), ("middle", middle), ("end", end))
        },
        task_errors=errors,
        failed_runs=failed_runs,
        slow_runs=soak.slow,
    )
    result = finish(stack, results, name, settle_timeout=40)
    entry["duration_s"] = round(elapsed, 1)

    assert soak.sent >= 30, f"only {soak.sent} runs in {elapsed:.0f} s"
    assert not errors and not failed_runs and not soak.slow, (errors, failed_runs, soak.slow)
    assert end["rss_kb"] <= middle["rss_kb"] * RSS_GROWTH + RSS_SLACK_KB, samples
    assert end["redis_keys"] <= middle["redis_keys"] + KEYS_SLACK, samples
    assert result.numbers["fills_replayed"] > 0
    assert_clean(result, soak.worker.tail(30) if soak.worker else "")
