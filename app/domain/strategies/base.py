"""The strategy interface, its input and output, and the registry of strategies by name.

A strategy answers every symbol it is asked about with an `Evaluation`: the outcome, a
sentence a trader can read, the numbers behind it, and the signal when there is one. The
outcomes that carry no signal are what "why did it not trade?" is answered with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Container, Mapping, Sequence
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


# Outcomes of an evaluation. BUY and SELL carry a signal; STOP_LOSS is the risk manager's
# exit (layer 6), recorded in the same place; the others say why there was no signal.
BUY = "buy"
SELL = "sell"
STOP_LOSS = "stop_loss"
BELOW_THRESHOLD = "below_threshold"
LAST_CANDLE_DOWN = "last_candle_down"
HOLD = "hold"
NOT_ENOUGH_CANDLES = "not_enough_candles"
NO_PRICE = "no_price"
NO_DATA = "no_data"
TOO_SMALL = "too_small"
STALE_RUN = "stale_run"  # the run's data was too old when the stage got to it
NOT_FETCHED = "not_fetched"  # worth a trade, but no book was fetched for it this cycle
INVALID = "invalid"  # the signal failed the event schema (e.g. a hostile symbol name)
OUTCOMES = (
    BUY,
    SELL,
    STOP_LOSS,
    BELOW_THRESHOLD,
    LAST_CANDLE_DOWN,
    HOLD,
    NOT_ENOUGH_CANDLES,
    NO_PRICE,
    NO_DATA,
    TOO_SMALL,
    STALE_RUN,
    INVALID,
    NOT_FETCHED,
)
SIGNAL_OUTCOMES = (BUY, SELL, STOP_LOSS)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What a strategy concluded for one symbol at one moment, and why.

    `values` are the numbers behind the outcome as exact strings (Decimals formatted with
    "f"); keys ending in `_pct` hold fractions (0.005 = 0.5 %), like the settings."""

    symbol: str
    outcome: str
    reason: str
    values: dict[str, str]
    signal: Signal | None = None

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}; known: {', '.join(OUTCOMES)}")
        if (self.signal is not None) != (self.outcome in SIGNAL_OUTCOMES):
            raise ValueError(f"outcome {self.outcome!r} and signal {self.signal!r} disagree")


@dataclass(frozen=True, slots=True)
class UniverseView:
    """The whole universe at three moments of the all-tickers history, enough to judge
    every pair each cycle without a request per symbol: the prices now, at the open of the
    current `interval` candle, and at the close of the candle one look-back earlier.

    `candle_open` and `reference` are None while the history does not reach back that far
    (after a start); a symbol missing from one of them is new, or was rejected then."""

    now: datetime
    interval: str
    lookback_minutes: int
    latest: Mapping[str, Decimal]
    candle_open: Mapping[str, Decimal] | None
    reference: Mapping[str, Decimal] | None
    history_minutes: float  # how far back the stored history reaches from `now`


class Strategy(Protocol):
    name: str

    def evaluate(self, ctx: StrategyContext) -> Evaluation:
        """One symbol, from its candles (fetched for the symbols that may trade)."""
        ...

    def screen(
        self,
        view: UniverseView,
        positions: Mapping[str, Position],
        equity: Decimal,
        max_position_pct: Decimal,
    ) -> dict[str, Evaluation]:
        """Every symbol of the universe, from the all-tickers history."""
        ...

    def tally(
        self,
        view: UniverseView,
        positions: Mapping[str, Position],
        equity: Decimal,
        max_position_pct: Decimal,
        skip: Container[str] = (),
        keep: int | None = None,
    ) -> tuple[Counter[str], dict[str, Evaluation]]:
        """`screen` for the symbols not in `skip`, counted: how many get each outcome, and
        the evaluations with a signal (the ones anyone reads each cycle; with `keep`, only
        the strongest `keep` of them)."""
        ...

    def interest(self, view: UniverseView) -> dict[str, Decimal]:
        """How much each symbol deserves a closer look (its candles and book) this cycle;
        the market-data stage fetches the TOP_N highest. Empty: rank by 24h change."""
        ...


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
