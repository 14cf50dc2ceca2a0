"""Momentum: buy a symbol that rose enough over the look-back, sell when the move reverses.

Window: the klines sorted by open time, the last one being MEXC's in-progress candle.
momentum = (last close - close n candles earlier) / that close, n = ceil(lookback / interval),
so the window spans the look-back ending at the latest price. The in-progress close is
provisional, which is what lets the strategy react within one poll instead of one interval
later; "the last candle closed up" therefore means it is up so far (close > open).

Entry (no position): momentum >= entry_threshold and the last candle up.
  strength = min(1, momentum / (4 * entry_threshold)), rounded down to 4 decimals;
  size = equity * max_position_pct * strength / ticker_price, rounded down to 8 decimals
  (the broker rounds further to the symbol's step).
Exit (holding): momentum <= -exit_threshold sells the whole position (is_exit=True).
No adding to a held position. Deterministic: `now` only stamps the signal.

Every call returns an Evaluation, with or without a signal: below the threshold, last candle
not up, holding above the exit threshold, too few candles... with the numbers behind it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from app.domain.market import KLINE_INTERVALS
from app.domain.strategies.base import (
    BELOW_THRESHOLD,
    BUY,
    HOLD,
    LAST_CANDLE_DOWN,
    NO_PRICE,
    NOT_ENOUGH_CANDLES,
    SELL,
    TOO_SMALL,
    Evaluation,
    StrategyContext,
    register,
)
from app.domain.trading import Side, Signal

STRENGTH_QUANTUM = Decimal("0.0001")
SIZE_QUANTUM = Decimal("0.00000001")


def window_candles(lookback_minutes: int, interval: str) -> int:
    """How many intervals back the reference close lies: ceil(lookback / interval), >= 1."""
    seconds = KLINE_INTERVALS.get(interval)
    if seconds is None:
        known = ", ".join(KLINE_INTERVALS)
        raise ValueError(f"unknown interval {interval!r}; MEXC accepts {known}")
    if lookback_minutes <= 0:
        raise ValueError(f"lookback_minutes must be positive, got {lookback_minutes}")
    return max(1, math.ceil(lookback_minutes * 60 / seconds))


def _strength(move: Decimal, threshold: Decimal) -> Decimal:
    return min(Decimal(1), move / (4 * threshold)).quantize(STRENGTH_QUANTUM, rounding=ROUND_DOWN)


def _fraction(value: object, name: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not 0 < number < 1:
        raise ValueError(f"{name} must be a fraction between 0 and 1, got {number}")
    return number


@register("momentum")
@dataclass(frozen=True, slots=True)
class MomentumStrategy:
    entry_threshold: Decimal = Decimal("0.005")
    exit_threshold: Decimal = Decimal("0.003")
    name: str = field(default="momentum", init=False)

    def __post_init__(self) -> None:
        # Settings may hand over strings or floats; keep exact Decimals.
        for attr in ("entry_threshold", "exit_threshold"):
            object.__setattr__(self, attr, _fraction(getattr(self, attr), attr))

    def evaluate(self, ctx: StrategyContext) -> Evaluation:
        n = window_candles(ctx.lookback_minutes, ctx.interval)
        candles = sorted(ctx.klines, key=lambda k: k.open_time)
        values = {
            "lookback_minutes": str(ctx.lookback_minutes),
            "interval": ctx.interval,
            "candles_needed": str(n + 1),
            "candles": str(len(candles)),
            "entry_threshold_pct": _plain(self.entry_threshold),
            "exit_threshold_pct": _plain(self.exit_threshold),
            "price": _plain(ctx.ticker_price),
        }

        def outcome(kind: str, reason: str, signal: Signal | None = None) -> Evaluation:
            return Evaluation(ctx.symbol, kind, reason, values, signal)

        if len(candles) < n + 1:
            return outcome(
                NOT_ENOUGH_CANDLES,
                f"{len(candles)} {ctx.interval} candles stored, {n + 1} needed for "
                f"{ctx.lookback_minutes}m of momentum",
            )
        last, ref = candles[-1], candles[-1 - n]
        if ref.close <= 0:
            return outcome(NO_PRICE, f"reference close {ref.close} is not positive")
        momentum = (last.close - ref.close) / ref.close
        values |= {
            "momentum_pct": _plain(momentum),
            "reference_close": _plain(ref.close),
            "last_open": _plain(last.open),
            "last_close": _plain(last.close),
        }
        window = f"momentum {momentum * 100:+.2f} % over {ctx.lookback_minutes}m"
        held = ctx.position if ctx.position is not None and ctx.position.qty > 0 else None

        if held is None:
            entry = f"{self.entry_threshold * 100:.2f} %"
            if momentum < self.entry_threshold:
                return outcome(BELOW_THRESHOLD, f"{window}, below the {entry} entry threshold")
            if last.close <= last.open:
                return outcome(
                    LAST_CANDLE_DOWN,
                    f"{window} (at least {entry}) but the last candle is not up "
                    f"(open {_plain(last.open)}, close {_plain(last.close)})",
                )
            if ctx.ticker_price <= 0 or ctx.equity <= 0:
                return outcome(
                    NO_PRICE, f"no positive price ({ctx.ticker_price}) or equity ({ctx.equity})"
                )
            strength = _strength(momentum, self.entry_threshold)
            size = (ctx.equity * ctx.max_position_pct * strength / ctx.ticker_price).quantize(
                SIZE_QUANTUM, rounding=ROUND_DOWN
            )
            values |= {"signal_strength": _plain(strength), "size": _plain(size)}
            if size <= 0:
                return outcome(TOO_SMALL, f"{window}: the sized order rounds down to nothing")
            reason = f"{window} ({n} x {ctx.interval} candles) >= {entry}, last candle up"
            return outcome(
                BUY,
                reason,
                Signal(
                    symbol=ctx.symbol,
                    direction=Side.BUY,
                    size=size,
                    signal_strength=strength,
                    timestamp=ctx.now,
                    price=ctx.ticker_price,
                    reason=reason,
                ),
            )

        exit_at = f"-{self.exit_threshold * 100:.2f} %"
        values |= {"position_qty": _plain(held.qty), "avg_entry": _plain(held.avg_entry)}
        if momentum <= -self.exit_threshold:
            reason = (
                f"{window} ({n} x {ctx.interval} candles) <= {exit_at}: momentum reversed, exit"
            )
            return outcome(
                SELL,
                reason,
                Signal(
                    symbol=ctx.symbol,
                    direction=Side.SELL,
                    size=held.qty,
                    signal_strength=_strength(-momentum, self.exit_threshold),
                    timestamp=ctx.now,
                    price=ctx.ticker_price,
                    reason=reason,
                    is_exit=True,
                ),
            )
        return outcome(HOLD, f"holding: {window}, above the {exit_at} exit threshold")


def _plain(value: Decimal) -> str:
    """An exact decimal string without exponent ("0", not "0E-8")."""
    return format(value.normalize() if value == 0 else value, "f")
