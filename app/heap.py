"""Short pauses of Python's cyclic garbage collector in worker processes.

A full collection walks every object the collector tracks and has not frozen. A pool
process that froze its heap at fork still builds ~35,000 long-lived objects in its first
tasks (lazy imports, mapper configuration, statement caches), and each full collection over
them then stopped whatever task was running for 8 to 25 ms, every few seconds: the slowest
stages of `cdb bench`. Collecting once and freezing the survivors after a process's 1st,
8th and 64th task keeps full collections under a millisecond. The collection comes first,
so only live objects are frozen; the collector still frees what later becomes garbage among
the unfrozen objects."""

from __future__ import annotations

import gc

SETTLE_AFTER = (1, 8, 64)  # tasks run by this process

_tasks_done = 0


def settle() -> None:
    """Collect, then keep everything that survived out of later collections."""
    gc.collect()
    gc.freeze()


def after_task() -> None:
    global _tasks_done
    _tasks_done += 1
    if _tasks_done in SETTLE_AFTER:
        settle()
