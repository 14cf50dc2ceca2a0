"""Trading strategies: `get_strategy(name, **params)` builds one by its registered name."""

from app.domain.strategies.base import (
    OUTCOMES,
    SIGNAL_OUTCOMES,
    Evaluation,
    Strategy,
    StrategyContext,
    UniverseView,
    get_strategy,
    known_strategies,
    register,
)
from app.domain.strategies.momentum import MomentumStrategy

__all__ = [
    "OUTCOMES",
    "SIGNAL_OUTCOMES",
    "Evaluation",
    "MomentumStrategy",
    "Strategy",
    "StrategyContext",
    "UniverseView",
    "get_strategy",
    "known_strategies",
    "register",
]
