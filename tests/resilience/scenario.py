"""What every scenario does at its end: settle and audit, look for leaked secrets, record."""

from __future__ import annotations

import json
from typing import Any

from tests.resilience.audit import Audit, settle
from tests.resilience.procs import cmdline
from tests.resilience.results import Results, recovery_summary
from tests.resilience.stack import Stack


def secret_leaks(stack: Stack, *, processes: bool = True) -> list[str]:
    """Where a secret's value shows: the logs of every process started, the recorded task
    runs (arguments, results, errors, tracebacks) and the command lines of the running
    processes (and their pool processes)."""
    found = []
    places = {"logs": stack.logs()}
    runs = stack.rows("SELECT args, kwargs, result, error, traceback FROM task_runs")
    places["task_runs"] = json.dumps(runs, default=str)
    if processes:
        lines = []
        for child in stack.children:
            if child.alive:
                lines += [cmdline(pid) for pid in [child.pid, *child.children()]]
        places["cmdlines"] = "\n".join(lines)
    for name, value in stack.secrets.values().items():
        for where, text in places.items():
            if value in text:
                found.append(f"{name} in {where}")
    return found


def finish(
    stack: Stack,
    results: Results,
    name: str,
    settle_timeout: float,
    expect_given_up: bool = False,
) -> Audit:
    entry = results.data["scenarios"][name]
    leaks = secret_leaks(stack)  # while the processes still run
    result = settle(stack, settle_timeout, expect_given_up)
    leaks += [leak for leak in secret_leaks(stack, processes=False) if leak not in leaks]
    entry["audit"] = {**result.numbers, "problems": result.problems}
    entry["numbers"]["secret_leaks"] = leaks
    entry["recovery"] = recovery_summary(entry["faults"])
    entry["numbers"]["trades"] = stack.trades()
    results.save()
    if leaks:
        result.problems.append(f"secrets leaked: {leaks}")
    return result


def record(results: Results, name: str, **numbers: Any) -> None:
    results.data["scenarios"][name]["numbers"].update(numbers)
    results.save()
