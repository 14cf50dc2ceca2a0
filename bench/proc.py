"""Memory of a process and its descendants, from /proc (Linux; no psutil).

RSS counts pages shared between the worker's main process and its forked pool children once
per process, as `ps` does; PSS (from smaps_rollup) divides shared pages between them, so the
PSS sum is what the worker really occupies. Both are reported.
"""

from __future__ import annotations

from pathlib import Path

PROC = Path("/proc")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree(pid: int) -> list[int]:
    """The process and every descendant."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += children(current)
    return pids


def _kib(path: Path, field: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def memory(pid: int) -> dict[str, float | int | list[float]]:
    """RSS and PSS in MiB, summed over the process tree, and RSS per process."""
    per_process, rss, pss = [], 0, 0
    for member in tree(pid):
        member_rss = _kib(PROC / str(member) / "status", "VmRSS")
        if member_rss is None:
            continue
        per_process.append(round(member_rss / 1024, 1))
        rss += member_rss
        pss += _kib(PROC / str(member) / "smaps_rollup", "Pss") or 0
    return {
        "processes": len(per_process),
        "rss_mb": round(rss / 1024, 1),
        "pss_mb": round(pss / 1024, 1),
        "rss_mb_per_process": per_process,
    }
