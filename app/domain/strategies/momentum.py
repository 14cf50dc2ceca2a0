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
from collections import Counter
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import NamedTuple

from app.domain.market import KLINE_INTERVALS
from app.domain.strategies.base import (
    BELOW_THRESHOLD,
    BUY,
    HOLD,
    LAST_CANDLE_DOWN,
    NO_PRICE,
    NOT_ENOUGH_CANDLES,
    SELL,
    SIGNAL_OUTCOMES,
    TOO_SMALL,
    Evaluation,
    StrategyContext,
    UniverseView,
    register,
)
from app.domain.trading import Position, Side, Signal

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
        }
        if len(candles) < n + 1:
            return Evaluation(
                ctx.symbol,
                NOT_ENOUGH_CANDLES,
                f"{len(candles)} {ctx.interval} candles stored, {n + 1} needed for "
                f"{ctx.lookback_minutes}m of momentum",
                values | self._thresholds() | {"price": _plain(ctx.ticker_price)},
            )
        last, ref = candles[-1], candles[-1 - n]
        return self.decide(
            symbol=ctx.symbol,
            candle_open=last.open,
            price_now=last.close,
            reference=ref.close,
            ticker_price=ctx.ticker_price,
            position=ctx.position,
            equity=ctx.equity,
            max_position_pct=ctx.max_position_pct,
            now=ctx.now,
            window=f"over {ctx.lookback_minutes}m",
            source=f"{n} x {ctx.interval} candles",
            values=values,
        )

    def screen(
        self,
        view: UniverseView,
        positions: Mapping[str, Position],
        equity: Decimal,
        max_position_pct: Decimal,
    ) -> dict[str, Evaluation]:
        """Every symbol from three moments of the all-tickers history: the same decision as
        `evaluate`, with the current candle's open and the reference close read from the
        history instead of candles."""
        out: dict[str, Evaluation] = {}
        values = {"lookback_minutes": str(view.lookback_minutes), "interval": view.interval}
        for symbol, price in view.latest.items():
            reference = view.reference.get(symbol) if view.reference is not None else None
            opened = view.candle_open.get(symbol) if view.candle_open is not None else None
            if reference is None or opened is None:
                out[symbol] = Evaluation(
                    symbol,
                    NOT_ENOUGH_CANDLES,
                    f"the all-tickers history reaches {view.history_minutes:.0f} min back, "
                    f"{view.lookback_minutes}m of momentum needs more (warming up)"
                    if view.reference is None or view.candle_open is None
                    else "no price for it a look-back ago in the all-tickers history (new, or "
                    "rejected then)",
                    values | {"price": _plain(price)},
                )
                continue
            position = positions.get(symbol)
            out[symbol] = self._from_history(
                view, symbol, price, opened, reference, position, equity, max_position_pct, values
            )
        return out

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
        the evaluations with a signal, whole (with `keep`, the `keep` with the largest moves,
        |momentum| as `interest` ranks them, ties by symbol). The same rule without the
        words."""
        counts: Counter[str] = Counter()
        signalling: list[tuple[Decimal, str, Decimal, Decimal, Decimal]] = []
        references, opens = view.reference or {}, view.candle_open or {}
        entry, below = self.entry_threshold, 0
        for symbol, price in view.latest.items():
            if symbol in skip:
                continue
            reference, opened = references.get(symbol), opens.get(symbol)
            if reference is None or opened is None:
                counts[NOT_ENOUGH_CANDLES] += 1
                continue
            # Most of the universe, decided without a division: not held, and momentum
            # (price - reference) / reference below the entry threshold.
            if reference > 0 and price - reference < entry * reference and symbol not in positions:
                below += 1
                continue
            held = _held(positions.get(symbol))
            verdict = self._verdict(opened, price, reference, price, held, equity, max_position_pct)
            counts[verdict.kind] += 1
            if verdict.kind in SIGNAL_OUTCOMES:
                assert verdict.momentum is not None
                signalling.append((abs(verdict.momentum), symbol, price, opened, reference))
        if below:
            counts[BELOW_THRESHOLD] += below
        if keep is not None:
            signalling = sorted(signalling, key=lambda s: (-s[0], s[1]))[:keep]
        values = {"lookback_minutes": str(view.lookback_minutes), "interval": view.interval}
        signalled = {
            symbol: self._from_history(
                view,
                symbol,
                price,
                opened,
                reference,
                positions.get(symbol),
                equity,
                max_position_pct,
                values,
            )
            for _, symbol, price, opened, reference in signalling
        }
        return counts, signalled

    def _from_history(
        self,
        view: UniverseView,
        symbol: str,
        price: Decimal,
        opened: Decimal,
        reference: Decimal,
        position: Position | None,
        equity: Decimal,
        max_position_pct: Decimal,
        values: dict[str, str],
    ) -> Evaluation:
        return self.decide(
            symbol=symbol,
            candle_open=opened,
            price_now=price,
            reference=reference,
            ticker_price=price,
            position=position,
            equity=equity,
            max_position_pct=max_position_pct,
            now=view.now,
            window=f"over {view.lookback_minutes}m",
            source="all-tickers history",
            values=values,
        )

    def interest(self, view: UniverseView) -> dict[str, Decimal]:
        """|momentum over the look-back|: the strongest movers either way get a closer look."""
        if view.reference is None:
            return {}
        scores = {}
        for symbol, price in view.latest.items():
            reference = view.reference.get(symbol)
            if reference is not None and reference > 0:
                scores[symbol] = abs(price - reference) / reference
        return scores

    def decide(
        self,
        *,
        symbol: str,
        candle_open: Decimal,
        price_now: Decimal,
        reference: Decimal,
        ticker_price: Decimal,
        position: Position | None,
        equity: Decimal,
        max_position_pct: Decimal,
        now: datetime,
        window: str,
        source: str,
        values: dict[str, str],
    ) -> Evaluation:
        """The momentum rule on three prices: the reference close a look-back ago, the current
        candle's open, and the price now (its close so far)."""
        values = values | self._thresholds() | {"price": _plain(ticker_price)}
        held = _held(position)
        verdict = self._verdict(
            candle_open, price_now, reference, ticker_price, held, equity, max_position_pct
        )

        def outcome(reason: str, signal: Signal | None = None) -> Evaluation:
            return Evaluation(symbol, verdict.kind, reason, values, signal)

        momentum = verdict.momentum
        if momentum is None:
            return outcome(f"reference close {_plain(reference)} is not positive")
        values |= {
            "momentum_pct": _plain(momentum),
            "reference_close": _plain(reference),
            "last_open": _plain(candle_open),
            "last_close": _plain(price_now),
        }
        moved = f"momentum {momentum * 100:+.2f} % {window}"

        if held is None:
            entry = f"{self.entry_threshold * 100:.2f} %"
            if verdict.kind == BELOW_THRESHOLD:
                return outcome(f"{moved}, below the {entry} entry threshold")
            if verdict.kind == LAST_CANDLE_DOWN:
                return outcome(
                    f"{moved} (at least {entry}) but the last candle is not up "
                    f"(open {_plain(candle_open)}, close {_plain(price_now)})"
                )
            if verdict.kind == NO_PRICE:
                return outcome(f"no positive price ({ticker_price}) or equity ({equity})")
            strength, size = verdict.strength, verdict.size
            assert strength is not None and size is not None
            values |= {"signal_strength": _plain(strength), "size": _plain(size)}
            if verdict.kind == TOO_SMALL:
                return outcome(f"{moved}: the sized order rounds down to nothing")
            reason = f"{moved} ({source}) >= {entry}, last candle up"
            signal = Signal(
                symbol=symbol,
                direction=Side.BUY,
                size=size,
                signal_strength=strength,
                timestamp=now,
                price=ticker_price,
                reason=reason,
            )
            return outcome(reason, signal)

        exit_at = f"-{self.exit_threshold * 100:.2f} %"
        values |= {"position_qty": _plain(held.qty), "avg_entry": _plain(held.avg_entry)}
        if verdict.kind == SELL:
            reason = f"{moved} ({source}) <= {exit_at}: momentum reversed, exit"
            assert verdict.strength is not None
            signal = Signal(
                symbol=symbol,
                direction=Side.SELL,
                size=held.qty,
                signal_strength=verdict.strength,
                timestamp=now,
                price=ticker_price,
                reason=reason,
                is_exit=True,
            )
            return outcome(reason, signal)
        return outcome(f"holding: {moved}, above the {exit_at} exit threshold")

    def _verdict(
        self,
        candle_open: Decimal,
        price_now: Decimal,
        reference: Decimal,
        ticker_price: Decimal,
        held: Position | None,
        equity: Decimal,
        max_position_pct: Decimal,
    ) -> _Verdict:
        """The rule itself, without words: `decide` explains what this concludes."""
        if reference <= 0:
            return _Verdict(NO_PRICE)
        momentum = (price_now - reference) / reference
        if held is None:
            if momentum < self.entry_threshold:
                return _Verdict(BELOW_THRESHOLD, momentum)
            if price_now <= candle_open:
                return _Verdict(LAST_CANDLE_DOWN, momentum)
            if ticker_price <= 0 or equity <= 0:
                return _Verdict(NO_PRICE, momentum)
            strength = _strength(momentum, self.entry_threshold)
            size = (equity * max_position_pct * strength / ticker_price).quantize(
                SIZE_QUANTUM, rounding=ROUND_DOWN
            )
            return _Verdict(TOO_SMALL if size <= 0 else BUY, momentum, strength, size)
        if momentum <= -self.exit_threshold:
            return _Verdict(SELL, momentum, _strength(-momentum, self.exit_threshold))
        return _Verdict(HOLD, momentum)

    def _thresholds(self) -> dict[str, str]:
        return {
            "entry_threshold_pct": _plain(self.entry_threshold),
            "exit_threshold_pct": _plain(self.exit_threshold),
        }


class _Verdict(NamedTuple):  # a tuple: made for every symbol of the universe each cycle
    kind: str
    momentum: Decimal | None = None  # None: no positive reference price
    strength: Decimal | None = None
    size: Decimal | None = None


def _held(position: Position | None) -> Position | None:
    return position if position is not None and position.qty > 0 else None


def _plain(value: Decimal) -> str:
    """An exact decimal string without exponent ("0", not "0E-8")."""
    return format(value.normalize() if value == 0 else value, "f")
