"""The numbers each scenario records, kept in one JSON file per test session.

Where: $CDB_RESILIENCE_RESULTS when set, else `<pytest basetemp>/resilience/results.json`
(printed at the end of the session) and then mirrored to
`.pytest_cache/d/resilience/last.json` (pytest keeps only its last three temporary folders,
whoever ran them).
`python -m tests.resilience.report` renders the last results.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any


class Results:
    def __init__(self, path: Path, mirror: Path | None = None) -> None:
        self.path = path
        self.mirror = mirror
        self.data: dict[str, Any] = {"started_at": time.time(), "scenarios": {}}
        path.parent.mkdir(parents=True, exist_ok=True)

    def scenario(self, name: str) -> dict[str, Any]:
        entry = self.data["scenarios"].setdefault(
            name, {"faults": [], "numbers": {}, "audit": {}, "outcome": "running"}
        )
        entry["started_at"] = time.time()
        return entry

    def fault(self, name: str, kind: str, at: float, recovery_s: float | None, **extra: Any):
        self.data["scenarios"][name]["faults"].append(
            {"kind": kind, "at": round(at, 3), "recovery_s": recovery_s, **extra}
        )
        self.save()

    def save(self) -> None:
        self.data["saved_at"] = time.time()
        text = json.dumps(self.data, indent=2, default=str)
        for path in (self.path, self.mirror):
            if path is not None:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(text)
                os.replace(tmp, path)


def recovery_summary(faults: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per fault kind: how many, median and worst recovery (None: never recovered)."""
    kinds: dict[str, list[float | None]] = {}
    for fault in faults:
        kinds.setdefault(fault["kind"], []).append(fault.get("recovery_s"))
    summary = {}
    for kind, values in kinds.items():
        known = [v for v in values if v is not None]
        summary[kind] = {
            "count": len(values),
            "median_s": round(statistics.median(known), 2) if known else None,
            "worst_s": max(known) if known else None,
            "unrecovered": len(values) - len(known),
        }
    return summary
