"""The MEXC client as the application configures it."""

from __future__ import annotations

from collections.abc import Callable

from app.config import Settings
from app.exchange.client import MexcClient, RetryEvent
from app.exchange.ratelimit import WeightBudget

_budgets: dict[tuple[str, int], WeightBudget] = {}


def shared_budget(settings: Settings) -> WeightBudget:
    """One weight budget per process and base URL, shared by every client it makes."""
    key = (settings.mexc_base_url, settings.mexc_weight_budget)
    if key not in _budgets:
        _budgets[key] = WeightBudget(capacity=settings.mexc_weight_budget)
    return _budgets[key]


def make_client(
    settings: Settings, on_retry: Callable[[RetryEvent], None] | None = None
) -> MexcClient:
    return MexcClient(
        settings.mexc_base_url,
        timeout=settings.mexc_timeout_sec,
        max_retries=settings.mexc_max_retries,
        budget=shared_budget(settings),
        on_retry=on_retry,
    )
