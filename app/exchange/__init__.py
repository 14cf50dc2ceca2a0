"""MEXC spot v3 public REST client, its parsing and its error tree."""

from app.exchange.client import MexcClient, RetryEvent
from app.exchange.errors import (
    BadRequestError,
    ExchangeConnectionError,
    ExchangeError,
    ExchangeTimeoutError,
    ExchangeUnavailableError,
    FirewallError,
    InvalidIntervalError,
    InvalidSymbolError,
    MalformedResponseError,
    PermanentExchangeError,
    RateLimitedError,
    RequestBudgetExceededError,
    TemporaryExchangeError,
)
from app.exchange.parsing import ParseError
from app.exchange.ratelimit import WeightBudget

__all__ = [
    "BadRequestError",
    "ExchangeConnectionError",
    "ExchangeError",
    "ExchangeTimeoutError",
    "ExchangeUnavailableError",
    "FirewallError",
    "InvalidIntervalError",
    "InvalidSymbolError",
    "MalformedResponseError",
    "MexcClient",
    "ParseError",
    "PermanentExchangeError",
    "RateLimitedError",
    "RequestBudgetExceededError",
    "RetryEvent",
    "TemporaryExchangeError",
    "WeightBudget",
]
