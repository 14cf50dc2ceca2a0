"""Worker heap settling: garbage is collected before the survivors are frozen, and it
happens after the configured task counts only."""

from __future__ import annotations

import gc
import weakref

import pytest

from app import heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def fresh_counter(monkeypatch):
    monkeypatch.setattr(heap, "_tasks_done", 0)
    yield
    gc.unfreeze()


def test_settle_frees_garbage_before_freezing_the_survivors(fresh_counter):
    garbage, kept = Node(), Node()
    dead = weakref.ref(garbage)
    del garbage
    frozen_before = gc.get_freeze_count()
    heap.settle()
    assert dead() is None  # collected, not frozen forever
    assert gc.get_freeze_count() > frozen_before
    assert not any(obj is kept for obj in gc.get_objects())  # frozen: out of collections
    assert kept.me is kept


def test_heap_settles_after_the_configured_tasks_only(fresh_counter, monkeypatch):
    settled_at = []
    monkeypatch.setattr(heap, "settle", lambda: settled_at.append(heap._tasks_done))
    for _ in range(100):
        heap.after_task()
    assert settled_at == list(heap.SETTLE_AFTER)
