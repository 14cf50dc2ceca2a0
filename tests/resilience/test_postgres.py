"""Scenario 3: PostgreSQL stopped for 30 s in the middle of a run (`pg_ctl stop -m fast`, then
start). Workers and beat survive it; whatever was cut off is retried, re-driven or failed with
its reason; nothing is lost or doubled."""

from __future__ import annotations

import time

import pytest

from tests.resilience.audit import assert_clean
from tests.resilience.procs import wait_until
from tests.resilience.scenario import finish, record
from tests.resilience.stack import driven

DOWN_SEC = 30
LOST_AFTER = 80  # the reconciler's limit for a run or task run cut off mid-way


@pytest.mark.timeout(280)
def test_postgres_stopped_for_30_seconds(make_stack, results, sim, pg, request):
    name = request.node.name
    results.scenario(name)
    stack = make_stack()
    worker = stack.start_worker()
    beat = stack.start_beat()
    pids = (worker.pid, beat.pid)
    with driven(sim.url):
        stack.wait_recovered(time.time(), 30, "a first run through execution")
        sent = sum(1 for _, line in beat.lines if "Sending due task market-data" in line)
        wait_until(
            lambda: (
                sum(1 for _, line in beat.lines if "Sending due task market-data" in line) > sent
            ),
            15,
            "beat to send a run",
            every=0.02,
        )
        time.sleep(0.1)  # the market-data task is fetching: it stores after the stop
        stopped = time.time()
        stack.engine.dispose()
        pg.stop("fast")
        try:
            time.sleep(DOWN_SEC)
        finally:
            pg.start()
        restored = time.time()
        recovery = stack.wait_recovered(stopped, 90, "a run after PostgreSQL came back")
        results.fault(
            name,
            "PostgreSQL stopped 30 s",
            stopped,
            recovery,
            down_s=round(restored - stopped, 2),
            after_restore_s=round(recovery - (restored - stopped), 2),
        )
        stack.wait_recovered(time.time(), 30, "the pipeline running on")
    survived = worker.alive and beat.alive and (worker.pid, beat.pid) == pids
    record(results, name, outages=1, down_s=round(restored - stopped, 1), survived=survived)
    result = finish(
        stack, results, name, settle_timeout=max(40.0, stopped + LOST_AFTER + 40 - time.time())
    )

    assert survived, f"worker or beat exited:\n{worker.tail()}\n{beat.tail()}"
    assert_clean(result, worker.tail(30))
