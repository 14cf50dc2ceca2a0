"""The strategy interface, its input, and the registry of strategies by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from app.domain.market import Kline
from app.domain.trading import Position, Signal


@dataclass(frozen=True, slots=True)
class StrategyContext:
    """Everything a strategy may look at for one symbol at one moment."""

    symbol: str
    klines: Sequence[Kline]  # oldest first; the last one may still be in progress
    ticker_price: Decimal
    now: datetime
    position: Position | None
    equity: Decimal
    max_position_pct: Decimal
    lookback_minutes: int
    interval: str


class Strategy(Protocol):
    name: str

    def evaluate(self, ctx: StrategyContext) -> Signal | None: ...


StrategyFactory = Callable[..., Strategy]

_REGISTRY: dict[str, StrategyFactory] = {}


def register(name: str) -> Callable[[StrategyFactory], StrategyFactory]:
    """Class decorator: make a strategy constructible by `get_strategy(name, **params)`."""

    def decorate(factory: StrategyFactory) -> StrategyFactory:
        if name in _REGISTRY:
            raise ValueError(f"strategy {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def known_strategies() -> list[str]:
    return sorted(_REGISTRY)


def get_strategy(name: str, **params: Any) -> Strategy:
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ValueError(
            f"unknown strategy {name!r}; known strategies: {', '.join(known_strategies())}"
        )
    try:
        return factory(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for strategy {name!r}: {exc}") from exc
