"""Scenario 2: the broker killed (kill -9) and restarted empty (no persistence: every queued
and unacknowledged message is gone) — with tasks in flight, with the workers idle, and with an
execution hand-off waiting in its queue. The workers and beat ride through it (same
processes), the pipeline resumes, and what the lost messages carried is re-driven by the
reconciler: the orders of the lost hand-off end filled or expired with the reason, never left
`new`."""

from __future__ import annotations

import time

import pytest

from tests.resilience.audit import assert_clean
from tests.resilience.procs import wait_until
from tests.resilience.scenario import finish, record
from tests.resilience.stack import driven, utc

DOWN_SEC = 4


def _in_flight(stack, since: float = 0.0) -> int:
    """Task runs started (after `since`, epoch s) and not ended."""
    sql = "SELECT count(*) FROM task_runs WHERE state = 'STARTED' AND started_at > :t"
    return stack.scalar(sql, t=utc(since)) or 0


def _outage(stack, results, name: str, kind: str, then=None):
    killed = time.time()
    stack.redis.kill()
    time.sleep(DOWN_SEC)
    stack.redis.start()
    restored = time.time()
    started = then() if then else None
    recovery = stack.wait_recovered(killed, 90, f"a run after the broker came back ({kind})")
    results.fault(
        name,
        kind,
        killed,
        recovery,
        down_s=round(restored - killed, 2),
        after_restore_s=round(recovery - (restored - killed), 2),
    )
    return started


RUNS_SINCE = (
    "SELECT r.id, r.status, r.signals_done_at IS NOT NULL AS signals, "
    "r.risk_done_at IS NOT NULL AS risk, r.execution_done_at IS NOT NULL AS execution, "
    "r.evaluation_counts AS outcomes, "
    "(SELECT count(*) FROM signals s WHERE s.run_id = r.id) AS signal_count, "
    "(SELECT string_agg(coalesce(d.rejected_by, 'approved'), ',') FROM risk_decisions d "
    " JOIN signals s ON s.id = d.signal_id WHERE s.run_id = r.id) AS decisions, "
    "(SELECT string_agg(o.status, ',') FROM orders o WHERE o.run_id = r.id) AS orders "
    "FROM market_data_runs r WHERE r.started_at > :t ORDER BY r.id"
)


def _runs_since(stack, since: float) -> str:
    """What became of each run started after `since` (epoch s): for a timeout's message."""
    return "\n".join(str(row) for row in stack.rows(RUNS_SINCE, t=utc(since)))


WAITING_ORDERS = (
    "SELECT r.id FROM market_data_runs r JOIN orders o ON o.run_id = r.id "
    "WHERE r.risk_done_at IS NOT NULL AND r.execution_done_at IS NULL AND o.status = 'new' "
    "ORDER BY r.id LIMIT 1"
)


@pytest.mark.timeout(300)
def test_redis_killed_and_restarted(make_stack, results, sim, request):
    name = request.node.name
    results.scenario(name)
    stack = make_stack()
    # The stages on one worker, execution on another (the README's scale-out shape), so the
    # third outage can catch an execution hand-off waiting in its queue.
    worker = stack.start_worker(queues="market_data,signals,risk")
    executor = stack.start_worker(queues="execution")
    beat = stack.start_beat()
    pids = (worker.pid, executor.pid, beat.pid)
    in_flight_at_kill = []
    with driven(sim.url, period=1.5):
        # 1. With tasks in flight: just after beat sent its first run, while it is worked on.
        sent = sum(1 for _, line in beat.lines if "Sending due task market-data" in line)
        wait_until(
            lambda: (
                sum(1 for _, line in beat.lines if "Sending due task market-data" in line) > sent
            ),
            15,
            "beat to send a run",
            every=0.02,
        )
        wait_until(lambda: _in_flight(stack), 5, "a task in flight", every=0.02)
        in_flight_at_kill.append(_in_flight(stack))
        first_kill = time.time()
        _outage(stack, results, name, "Redis kill -9, tasks in flight")

        # 2. With the workers idle: between two runs, nothing started since the first kill.
        # A run the worker cancelled then (acks_late: it could not be acknowledged) gets no
        # end of its own and stays STARTED until the reconciler marks it LOST; it runs nowhere.
        stack.wait_recovered(time.time(), 30, "a run after the first outage")
        wait_until(lambda: _in_flight(stack, first_kill) == 0, 10, "an idle moment", every=0.05)
        in_flight_at_kill.append(_in_flight(stack, first_kill))
        _outage(stack, results, name, "Redis kill -9, workers idle")
        stack.wait_recovered(time.time(), 30, "the pipeline running on")
        survived = all(p.alive for p in (worker, executor, beat))
        survived = survived and (worker.pid, executor.pid, beat.pid) == pids

        # 3. An execution hand-off lost: approved orders wait for an execution worker (it is
        # being redeployed) when the broker dies with their message.
        executor.stop()
        stopped = time.time()
        try:
            lost_run = wait_until(lambda: stack.scalar(WAITING_ORDERS), 90, "orders waiting")
        except AssertionError as error:
            runs = _runs_since(stack, stopped)
            message = (
                f"{error}; the runs since the stop:\n{runs}\n"
                f"the worker:\n{worker.tail(20)}\nbeat:\n{beat.tail(10)}"
            )
            raise AssertionError(message) from None
        lost_orders = stack.scalar("SELECT count(*) FROM orders WHERE run_id = :r", r=lost_run)
        in_flight_at_kill.append(_in_flight(stack))
        executor = _outage(
            stack,
            results,
            name,
            "Redis kill -9, execution hand-off lost",
            then=lambda: stack.start_worker(queues="execution"),
        )
        stack.wait_recovered(time.time(), 30, "the pipeline running on")
    record(
        results,
        name,
        outages=stack.redis.kills,
        in_flight_at_kill=in_flight_at_kill,
        worker_and_beat_survived=survived,
        connection_lost_logged=worker.said("Connection to broker lost"),
        hand_off_lost_run=lost_run,
        hand_off_lost_orders=lost_orders,
    )
    result = finish(stack, results, name, settle_timeout=100)
    outcome = stack.rows("SELECT status, reject_reason FROM orders WHERE run_id = :r", r=lost_run)
    record(results, name, hand_off_lost_order_outcomes=outcome)

    assert in_flight_at_kill[0] > 0 and in_flight_at_kill[1] == 0
    assert survived, f"a worker or beat exited:\n{worker.tail()}\n{beat.tail()}"
    assert all(o["status"] != "new" for o in outcome), outcome
    assert_clean(result, worker.tail(30))
