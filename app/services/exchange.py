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


_worker_clients: dict[tuple, MexcClient] = {}


def worker_client(settings: Settings) -> MexcClient:
    """One long-lived client per worker process (its connection pool, TLS context and CA
    bundle are built once, not per task), budgeting through Redis like every worker."""
    key = (
        settings.mexc_base_url,
        settings.mexc_timeout_sec,
        settings.mexc_max_retries,
        settings.broker_url,
        settings.redis_key_prefix,
        settings.mexc_weight_budget,
    )
    client = _worker_clients.get(key)
    if client is None:
        client = _worker_clients[key] = make_client(settings, shared=True)
    return client


def forget_worker_clients() -> None:
    """After a fork: the parent's connections must not be shared (they are not closed: the
    parent may still use them)."""
    _worker_clients.clear()
    _redis_budgets.clear()


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
