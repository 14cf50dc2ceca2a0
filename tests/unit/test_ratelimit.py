import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.exchange.errors import RequestBudgetExceededError, TemporaryExchangeError
from app.exchange.ratelimit import WeightBudget

pytestmark = pytest.mark.unit


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def make(capacity: int = 10, window: float = 10.0) -> tuple[WeightBudget, FakeTime]:
    fake = FakeTime()
    return WeightBudget(capacity, window, clock=fake.clock, sleep=fake.sleep), fake


def test_grants_within_capacity_without_waiting() -> None:
    budget, fake = make()
    assert budget.acquire(4, max_wait=0) == 0
    assert budget.acquire(6, max_wait=0) == 0
    assert budget.in_use() == 10
    assert fake.slept == []


def test_blocks_until_the_oldest_weight_leaves_the_window() -> None:
    budget, fake = make()
    budget.acquire(4, max_wait=0)
    fake.now = 3.0
    budget.acquire(6, max_wait=0)
    fake.now = 5.0
    # 4 more only fit once the first booking (t=0) expires at t=10.
    assert budget.acquire(4, max_wait=30) == pytest.approx(5.0)
    assert fake.slept == [pytest.approx(5.0)]
    assert fake.now == pytest.approx(10.0)
    # 6 more need the t=3 booking gone as well: t=13.
    assert budget.acquire(6, max_wait=30) == pytest.approx(3.0)


def test_weight_frees_up_after_the_window() -> None:
    budget, fake = make()
    budget.acquire(10, max_wait=0)
    fake.now = 10.0
    assert budget.in_use() == 0
    assert budget.acquire(10, max_wait=0) == 0


def test_raises_when_it_cannot_grant_within_max_wait_and_books_nothing() -> None:
    budget, fake = make()
    budget.acquire(10, max_wait=0)
    fake.now = 1.0
    with pytest.raises(RequestBudgetExceededError) as info:
        budget.acquire(1, max_wait=5)
    assert info.value.wait_needed == pytest.approx(9.0)
    assert isinstance(info.value, TemporaryExchangeError)
    assert "budget" in str(info.value)
    assert fake.slept == []
    assert budget.in_use() == 10
    assert budget.acquire(1, max_wait=9) == pytest.approx(9.0)


def test_waiters_are_served_in_arrival_order() -> None:
    slept: list[float] = []
    # Frozen clock and a sleep that does not move it: bookings stack up a window apart.
    budget = WeightBudget(10, 10.0, clock=lambda: 0.0, sleep=slept.append)
    assert budget.acquire(10, max_wait=100) == 0
    assert budget.acquire(10, max_wait=100) == pytest.approx(10.0)
    assert budget.acquire(1, max_wait=100) == pytest.approx(20.0)
    assert budget.acquire(9, max_wait=100) == pytest.approx(20.0)
    assert budget.acquire(1, max_wait=100) == pytest.approx(30.0)
    assert slept == pytest.approx([10.0, 20.0, 20.0, 30.0])


def test_weight_larger_than_capacity_is_a_programming_error() -> None:
    budget, _ = make(capacity=10)
    with pytest.raises(ValueError, match="never fit"):
        budget.acquire(11, max_wait=1000)
    with pytest.raises(ValueError):
        budget.acquire(-1, max_wait=0)
    assert budget.acquire(0, max_wait=0) == 0


def test_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError):
        WeightBudget(0)
    with pytest.raises(ValueError):
        WeightBudget(10, 0)


def test_defaults_stay_below_mexc_limits() -> None:
    budget = WeightBudget()
    assert budget.capacity == 250
    assert budget.window_seconds == 10.0


def test_concurrent_threads_never_exceed_capacity_in_any_window() -> None:
    # Whole-number time units keep the booking arithmetic exact for the window check below.
    capacity, window = 50, 1000
    lock = threading.Lock()
    now = [0]
    local = threading.local()

    def clock() -> float:
        # Every reading moves time on a little, so old bookings expire during the test.
        with lock:
            now[0] += 3
            local.reading = now[0]
            return now[0]

    budget = WeightBudget(capacity, window, clock=clock, sleep=lambda _s: None)
    grants: list[tuple[float, int]] = []

    def worker(seed: int) -> int:
        rng = random.Random(seed)
        granted = 0
        for _ in range(60):
            weight = rng.choice([1, 1, 1, 5, 10, 40])
            waited = budget.acquire(weight, max_wait=1e9)
            with lock:
                grants.append((local.reading + waited, weight))
            granted += weight
        return granted

    with ThreadPoolExecutor(max_workers=16) as pool:
        total = sum(pool.map(worker, range(16)))

    assert sum(w for _, w in grants) == total
    grants.sort()
    times = [t for t, _ in grants]
    for end in times:
        in_window = sum(w for t, w in grants if t <= end < t + window)
        assert in_window <= capacity, f"{in_window} weight in the window ending at {end}"
    # The budget was actually exercised: requests had to wait for later windows.
    assert times[-1] - times[0] > 10 * window
