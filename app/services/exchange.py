"""The MEXC client as the application configures it."""

from __future__ import annotations

from collections.abc import Callable

import redis

from app.config import Settings
from app.exchange.client import MexcClient, RetryEvent
from app.exchange.ratelimit import WeightBudget
from app.exchange.shared_budget import RedisWeightBudget

_budgets: dict[tuple[str, int], WeightBudget] = {}
_redis_budgets: dict[tuple[str, str, int], RedisWeightBudget] = {}


def process_budget(settings: Settings) -> WeightBudget:
    """One weight budget per process and base URL, shared by every client it makes."""
    key = (settings.mexc_base_url, settings.mexc_weight_budget)
    if key not in _budgets:
        _budgets[key] = WeightBudget(capacity=settings.mexc_weight_budget)
    return _budgets[key]


def redis_budget(settings: Settings) -> RedisWeightBudget:
    """The budget every worker on every machine shares through the broker's Redis."""
    key = (settings.broker_url, settings.redis_key_prefix, settings.mexc_weight_budget)
    if key not in _redis_budgets:
        client = redis.Redis.from_url(settings.broker_url, socket_timeout=5)
        _redis_budgets[key] = RedisWeightBudget(
            client, settings.mexc_weight_budget, key_prefix=settings.redis_key_prefix
        )
    return _redis_budgets[key]


def make_client(
    settings: Settings,
    on_retry: Callable[[RetryEvent], None] | None = None,
    *,
    shared: bool = False,
) -> MexcClient:
    """A configured client. `shared=True` (the workers) budgets request weight across every
    worker through Redis; otherwise (one-off CLI commands) within this process."""
    return MexcClient(
        settings.mexc_base_url,
        timeout=settings.mexc_timeout_sec,
        max_retries=settings.mexc_max_retries,
        budget=redis_budget(settings) if shared else process_budget(settings),
        on_retry=on_retry,
    )
