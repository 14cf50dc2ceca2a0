"""Trading strategies: `get_strategy(name, **params)` builds one by its registered name."""

from app.domain.strategies.base import (
    Strategy,
    StrategyContext,
    get_strategy,
    known_strategies,
    register,
)
from app.domain.strategies.momentum import MomentumStrategy

__all__ = [
    "MomentumStrategy",
    "Strategy",
    "StrategyContext",
    "get_strategy",
    "known_strategies",
    "register",
]
