"""Scenario 4: a second beat started by mistake runs beside the first for a minute. No
market-data run is doubled (runs counted per beat period, and per sending beat); when the
first beat stops, the second takes over."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.resilience.audit import assert_clean
from tests.resilience.scenario import finish, record
from tests.resilience.stack import driven, utc

BOTH_SEC = 60
SEND = "Sending due task market-data"


def _sends(beat, since: float, until: float = float("inf")) -> int:
    return sum(1 for at, line in beat.lines if SEND in line and since <= at < until)


@pytest.mark.timeout(200)
def test_a_second_beat_doubles_nothing(make_stack, results, sim, request):
    name = request.node.name
    results.scenario(name)
    stack = make_stack()
    interval = int(stack.setting("MARKET_DATA_INTERVAL_SEC"))
    stack.start_worker()
    first = stack.start_beat()
    with driven(sim.url):
        first.wait_for("beat holds the lease", 30)
        second = stack.start_beat(tag="second-machine")
        second.wait_for("beat: Starting", 30)
        window = (time.time(), time.time() + BOTH_SEC)
        time.sleep(BOTH_SEC)
        runs = stack.rows(
            "SELECT id, started_at FROM market_data_runs WHERE trigger = 'beat' "
            "AND started_at >= :a AND started_at < :b ORDER BY started_at",
            a=utc(window[0]),
            b=utc(window[1]),
        )
        reconciles = stack.scalar(
            "SELECT count(*) FROM task_runs WHERE name = 'cdb.maintenance.reconcile' "
            "AND started_at >= :a AND started_at < :b",
            a=utc(window[0]),
            b=utc(window[1]),
        )
        sends = {"first": _sends(first, *window), "second": _sends(second, *window)}

        # The holder stops (a deploy): the standby takes the lease and sends on.
        stopped = time.time()
        first.stop()
        recovery = stack.wait_recovered(stopped, 60, "the second beat to take over")
        results.fault(name, "lease holder beat stopped", stopped, recovery)
        taken_over = _sends(second, stopped) > 0
    gaps = [
        (b["started_at"] - a["started_at"]).total_seconds() for a, b in itertools.pairwise(runs)
    ]
    doubled = sum(1 for gap in gaps if gap < interval / 2)
    periods = {int(r["started_at"].timestamp() // interval) for r in runs}
    record(
        results,
        name,
        beats=2,
        window_s=BOTH_SEC,
        runs_in_window=len(runs),
        expected_runs=BOTH_SEC // interval,
        beat_periods_with_a_run=len(periods),
        runs_doubled=doubled,
        smallest_gap_s=round(min(gaps), 2) if gaps else None,
        reconciles_in_window=reconciles,
        sends_by_beat=sends,
        standby_took_over=taken_over,
    )
    result = finish(stack, results, name, settle_timeout=40)

    assert doubled == 0, gaps
    assert BOTH_SEC // interval - 1 <= len(runs) <= BOTH_SEC // interval + 1, len(runs)
    assert sends["second"] == 0, sends
    assert reconciles <= BOTH_SEC // int(stack.setting("RECONCILE_INTERVAL_SEC")) + 1
    assert taken_over
    assert_clean(result)
