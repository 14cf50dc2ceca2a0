"""Crash points for the resilience suite: a worker can be made to die at a chosen moment of
a stage (just before its commit, just after it) to prove that nothing is lost or doubled.

Inert unless CDB_CRASH_POINTS is set, e.g. `signals.before_commit=0.2,risk.after_commit=0.1`
(each point: the probability that the process SIGKILLs itself when it passes there). Never
set it in production.
"""

from __future__ import annotations

import os
import random
import signal
from functools import cache


@cache
def _points(spec: str) -> dict[str, float]:
    points = {}
    for item in spec.split(","):
        name, _, chance = item.strip().partition("=")
        if name:
            points[name] = float(chance or 1)
    return points


def crash_point(name: str) -> None:
    spec = os.environ.get("CDB_CRASH_POINTS")
    if not spec:
        return
    chance = _points(spec).get(name)
    if chance is not None and random.random() < chance:
        os.kill(os.getpid(), signal.SIGKILL)
