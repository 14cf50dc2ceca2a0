"""Scenario 1: SIGKILLs at random moments — pool processes mid-task, mid-commit of every
stage (crash points), worker and beat main processes — while beat drives the pipeline (and a
sender adds runs back to back, so more work is in flight) and the market trades. A killed
main process is replaced as a supervisor would (its orphans ended, a new one started)."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from tests.resilience.audit import assert_clean
from tests.resilience.scenario import finish, record
from tests.resilience.stack import Sender, driven

STAGES = ("cdb.market_data.run", "cdb.signals.run", "cdb.risk.run", "cdb.execution.run")
POINTS = [
    f"{stage}.{when}"
    for stage in ("market_data", "signals", "risk", "execution")
    for when in ("before_commit", "after_commit")
]
CRASH_CHANCE = 0.3
CHAOS_SEC = 40
MAIN_KILL_WINDOW = (2, 9)  # worker main processes are killed in this part of the chaos
BEAT_KILL_AT = (22, 30)
# A killed main's task runs are marked LOST, and its market-data run failed, only once the
# market-data hard limit plus the reconciler's margin has passed (80 s): the audit waits so long.
LOST_AFTER = 80


@pytest.mark.timeout(280)
def test_sigkills_lose_and_double_nothing(make_stack, results, sim, request):
    name = request.node.name
    entry = results.scenario(name)
    rng = random.Random()
    crash_points = ",".join(f"{point}={CRASH_CHANCE}" for point in POINTS)
    stack = make_stack()
    worker = stack.start_worker(crash_points=crash_points)
    beat = stack.start_beat()
    faults: list[tuple[str, float]] = []  # (kind, when)
    killed_children: set[int] = set()
    workers = [worker]

    main_kills = sorted(rng.uniform(*MAIN_KILL_WINDOW) for _ in range(2))
    beat_kill = rng.uniform(*BEAT_KILL_AT)
    with driven(sim.url) as driver, Sender(stack) as sender:
        start = time.time()
        while time.time() - start < CHAOS_SEC:
            time.sleep(rng.uniform(1.0, 3.0))
            elapsed = time.time() - start
            if main_kills and elapsed >= main_kills[0]:
                main_kills.pop(0)
                faults.append(("worker main SIGKILL", time.time()))
                worker.kill()
                worker = stack.replace_worker(worker, crash_points=crash_points)
                workers.append(worker)
            elif beat_kill is not None and elapsed >= beat_kill:
                beat_kill = None
                faults.append(("beat SIGKILL", time.time()))
                beat.kill()
                beat.kill_group()
                beat = stack.start_beat()
            else:
                children = worker.children()
                if children:
                    pid = rng.choice(children)
                    killed_children.add(pid)
                    faults.append(("pool process SIGKILL (test)", time.time()))
                    os.kill(pid, signal.SIGKILL)

        sender.__exit__()
        # The chaos ends: a clean worker takes over, as after a fixed deployment.
        clean = stack.start_worker()
        worker.stop()
        # Every crash point that fired, dated by the pool's report of its death.
        for w in workers:
            for at, pid in w.child_kills():
                if pid not in killed_children:
                    faults.append(("crash point (pool SIGKILL)", at))
        last_fault = max(at for _, at in faults)
        stack.wait_recovered(last_fault, 60, "a run after the last kill to be executed")
    for kind, at in faults:
        results.fault(name, kind, at, stack.wait_recovered(at, 5, f"recovery after {kind}"))

    kills = len(faults)
    # A task killed mid-run is delivered again: its run's attempts count every delivery.
    by_stage = {
        r["name"]: r["n"]
        for r in stack.rows(
            "SELECT name, sum(attempts - 1) AS n FROM task_runs GROUP BY name "
            "HAVING sum(attempts - 1) > 0"
        )
    }
    record(
        results,
        name,
        kills=kills,
        kills_by_kind={k: sum(1 for kind, _ in faults if kind == k) for k, _ in faults},
        redeliveries_by_task=by_stage,
        market_moves=driver.moves,
        manual_runs_sent=sender.sent,
        worker_pids=[w.pid for w in workers] + [clean.pid],
    )
    first_main_kill = min(at for kind, at in faults if kind == "worker main SIGKILL")
    settle_for = max(40.0, first_main_kill + LOST_AFTER + 45 - time.time())
    result = finish(stack, results, name, settle_timeout=settle_for)

    assert kills >= 20, f"only {kills} kills: {entry['numbers']}"
    assert set(STAGES) <= set(by_stage), f"a stage was never killed mid-task: {by_stage}"
    assert result.numbers["fills_replayed"] > 0, "no trade happened: the market did not move"
    assert clean.alive
    assert_clean(result, clean.tail(30))
