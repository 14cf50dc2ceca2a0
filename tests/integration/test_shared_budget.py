"""The MEXC weight budget shared through the real Redis by several processes' clients."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest
import redis

from app.exchange.errors import RequestBudgetExceededError
from app.exchange.shared_budget import RedisWeightBudget
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix(redis_prefix):
    return f"{redis_prefix}budget-{uuid.uuid4().hex[:6]}:"


def budget(prefix: str, capacity: int = 20) -> RedisWeightBudget:
    return RedisWeightBudget(redis.Redis.from_url(REDIS_URL), capacity, 1, key_prefix=prefix)


def test_two_workers_share_one_window(prefix):
    first, second = budget(prefix), budget(prefix)  # as in two worker processes
    window = int(first._now())
    assert first.acquire(15, max_wait=5) == 0.0
    waited = second.acquire(10, max_wait=5)  # 25 > 20: must wait for the next window
    if int(second._now()) == window + 1 and waited == 0.0:
        pytest.skip("the first grant landed at a window's very end; nothing to compare")
    assert waited > 0


def test_a_full_window_refuses_rather_than_waiting_too_long(prefix):
    shared = budget(prefix)
    shared.acquire(20, max_wait=5)
    with pytest.raises(RequestBudgetExceededError, match="shared budget"):
        budget(prefix).acquire(20, max_wait=0)
    with pytest.raises(ValueError, match="never fit"):
        shared.acquire(21, max_wait=5)


def test_no_window_ever_grants_more_than_its_capacity(prefix):
    grants: Counter[int] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        mine = budget(prefix)
        for _ in range(6):
            mine.acquire(5, max_wait=10)
            with lock:
                grants[mine.last_window] += 5

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(grants.values()) == 4 * 6 * 5
    assert max(grants.values()) <= 20, grants
    assert len(grants) >= 6  # 120 weight at 20 per window needs six windows
