"""Render the last resilience results as the tables of docs/RELIABILITY.md.

    python -m tests.resilience.report [RESULTS.json]

Without an argument: $CDB_RESILIENCE_RESULTS, else `.pytest_cache/d/resilience/last.json`
(the copy of the last session's results), else the newest
`<tmp>/pytest-of-<user>/pytest-*/resilience/results.json`.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.resilience.results import recovery_summary

TITLES = {
    "test_sigkills_lose_and_double_nothing": "1. SIGKILLs (pool, mid-commit, mains)",
    "test_redis_killed_and_restarted": "2. Redis kill -9 + restart",
    "test_postgres_stopped_for_30_seconds": "3. PostgreSQL stopped 30 s",
    "test_a_second_beat_doubles_nothing": "4. A second beat for a minute",
    "test_exchange_storms": "5. Exchange storms (+ hostile names)",
    "test_hostile_symbols_at_the_client_boundary": "5b. Hostile symbols, client boundary",
    "test_hostile_messages_are_refused_and_recorded": "6. Hostile messages on every queue",
    "test_no_secret_shows_anywhere": "7. Secrets",
    "test_soak": "8. Soak (fast mode)",
}


def find_results(argv: list[str]) -> Path:
    if argv:
        return Path(argv[0])
    if os.environ.get("CDB_RESILIENCE_RESULTS"):
        path = Path(os.environ["CDB_RESILIENCE_RESULTS"])
        return path if path.suffix == ".json" else path / "results.json"
    last = Path(__file__).resolve().parents[2] / ".pytest_cache/d/resilience/last.json"
    if last.is_file():
        return last
    root = Path(tempfile.gettempdir()) / f"pytest-of-{getpass.getuser()}"
    found = sorted(root.glob("pytest-*/resilience/results.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"no results.json under {root}: run the suite first")
    return found[-1]


def _s(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _injected(name: str, numbers: dict[str, Any], faults: list) -> str:
    if "kills" in numbers:
        return f"{numbers['kills']} SIGKILLs"
    if "outages" in numbers:
        return f"{numbers['outages']} outage(s)"
    if "beats" in numbers:
        return f"{numbers['beats']} beats, {numbers.get('window_s')} s"
    if "storms" in numbers:
        return f"{numbers['storms']} storms, {numbers.get('hostile_names_served', 0)} hostile names"
    if "hostile_inputs" in numbers:
        return f"{numbers['hostile_inputs']} hostile inputs"
    if "secrets_checked" in numbers:
        return f"{numbers['secrets_checked']} secrets, {numbers.get('scrapes')} scrapes, 2 blips"
    if "runs_per_second" in numbers:
        return f"{numbers['runs']} runs in {numbers['seconds']:.0f} s"
    return str(len(faults))


def render(data: dict[str, Any]) -> str:
    lines = [
        "| scenario | injected | runs | orders checked | lost | doubled | stale fills "
        "| left STARTED | recovery median / worst (s) | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    kinds = [
        "| scenario | fault | count | median recovery (s) | worst recovery (s) |",
        "|---|---|---|---|---|",
    ]
    order = list(TITLES)
    scenarios = sorted(
        data["scenarios"].items(),
        key=lambda item: order.index(item[0]) if item[0] in order else len(order),
    )
    for name, entry in scenarios:
        numbers, audit, faults = entry.get("numbers", {}), entry.get("audit", {}), entry["faults"]
        title = TITLES.get(name, name)
        recoveries = [f["recovery_s"] for f in faults if f.get("recovery_s") is not None]
        recovery = (
            f"{sorted(recoveries)[len(recoveries) // 2]:.1f} / {max(recoveries):.1f}"
            if recoveries
            else "-"
        )
        lost = (
            audit.get("runs_lost", 0)
            + audit.get("runs_left_running", 0)
            + audit.get("orders_left_new", 0)
            if audit
            else None
        )
        lines.append(
            f"| {title} | {_injected(name, numbers, faults)} | {_s(audit.get('runs'))} "
            f"| {_s(audit.get('orders'))} | {_s(lost)} | {_s(audit.get('doubled'))} "
            f"| {_s(audit.get('stale_fills'))} | {_s(audit.get('task_runs_left_started'))} "
            f"| {recovery} | {entry.get('outcome', '?')} |"
        )
        for kind, summary in recovery_summary(faults).items():
            kinds.append(
                f"| {title} | {kind} | {summary['count']} | {_s(summary['median_s'])} "
                f"| {_s(summary['worst_s'])}"
                + (f" ({summary['unrecovered']} never)" if summary["unrecovered"] else "")
                + " |"
            )
    durations = [
        f"{TITLES.get(n, n)} {e['duration_s']:.0f} s" for n, e in scenarios if e.get("duration_s")
    ]
    return "\n".join([*lines, "", *kinds, "", "Scenario durations: " + "; ".join(durations) + "."])


def main(argv: list[str] | None = None) -> int:
    path = find_results(sys.argv[1:] if argv is None else argv)
    data = json.loads(path.read_text())
    print(f"<!-- from {path} -->")
    print(render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
