"""The risk manager: six protection layers in priority order (SPEC §4). Pure: no I/O, no clock.

`decide` runs the layers for one signal and stops at the first that rejects; every layer it
ran leaves a `LayerVerdict` with the values it saw. The `RiskState` it returns is the only
memory between decisions, and the operator functions (`halt`, `resume`, `release_drawdown`)
are the only way to leave a manual halt.

Halts (`RiskState.halt_reason` is `"<kind>"` or `"<kind>: <detail>"`, see `halt_kind`):

- `drawdown`: the daily drawdown reached its limit. Only `release_drawdown` clears it; it
  survives 00:00 UTC. A drawdown breach also replaces an operator or breaker halt, so that
  `resume` can never clear a halt the drawdown alone would impose.
- `circuit_breaker`: the breaker tripped more than `breaker_max_retries` times in a row.
  Cleared by `resume`.
- `operator`: set by `halt`, cleared by `resume`.

While halted no entry (BUY) passes layer 1. Exits (every SELL: the book is long-only, so a
SELL can only reduce a position) pass layers 1, 4 and 5 even while halted, since they reduce
risk, but layers 2 and 3 still apply to them: a price we can't trust can't be filled.

Pricing: layer 2 estimates the market order's average fill by walking the book for the
requested size. Layers 4 and 5 value the symbol, the existing holding included, at
max(estimated fill, last price) and compare against the equity re-marked the same way, so the
limits hold right after the fill whether the portfolio marks the position at its fill price or
at the last price. Taker fees are not known here and are not included.

Arithmetic runs in a 60-digit decimal context so that sums and products of prices and
quantities are exact; limits are compared by cross-multiplication, and the only rounding is
the trimmed size, which is rounded down to the symbol's quantity step (`MarketView.qty_step`,
or `TRIM_QUANTUM` when the step is unknown).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext
from typing import Any

from app.domain.book import BookWalk, slippage_pct, walk_book
from app.domain.trading import (
    ZERO,
    Alert,
    AlertCode,
    AlertLevel,
    LayerVerdict,
    MarketView,
    PortfolioState,
    Position,
    RiskDecision,
    RiskState,
    Side,
    Signal,
)

HALT_DRAWDOWN = "drawdown"
HALT_OPERATOR = "operator"
HALT_BREAKER = "circuit_breaker"

DAILY_DRAWDOWN = "daily_drawdown"
MARKET_ANOMALY = "market_anomaly"
DATA_STALENESS = "data_staleness"
EXPOSURE = "exposure"
POSITION_SIZE = "position_size"
STOP_LOSS = "stop_loss"
LAYERS = (DAILY_DRAWDOWN, MARKET_ANOMALY, DATA_STALENESS, EXPOSURE, POSITION_SIZE, STOP_LOSS)

STOP_LOSS_REASON = "stop-loss"  # reason prefix of the exits `stop_loss_exits` creates
TRIM_QUANTUM = Decimal("1e-18")  # trimmed sizes are rounded down to this step
PRECISION = 60
ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The thresholds of the six layers. Percentages are fractions (0.10 = 10 %)."""

    max_daily_drawdown_pct: Decimal
    max_slippage_pct: Decimal
    max_spread_multiplier: Decimal
    data_stale_timeout: timedelta
    max_exposure_pct: Decimal
    max_position_pct: Decimal
    stop_loss_pct: Decimal
    breaker_pause: timedelta = timedelta(seconds=60)
    breaker_max_retries: int = 10
    exposure_alert_ratio: Decimal = Decimal("0.8")

    def __post_init__(self) -> None:
        bounds = {  # name: (low, high, high inclusive)
            "max_daily_drawdown_pct": (ZERO, ONE, True),
            "max_slippage_pct": (ZERO, ONE, True),
            "max_exposure_pct": (ZERO, ONE, True),
            "max_position_pct": (ZERO, ONE, True),
            "exposure_alert_ratio": (ZERO, ONE, True),
            "stop_loss_pct": (ZERO, ONE, False),
            "max_spread_multiplier": (ZERO, None, False),
        }
        for name, (low, high, inclusive) in bounds.items():
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not _within(value, low, high, inclusive):
                top = f"{high}]" if inclusive else f"{high if high is not None else 'inf'})"
                raise ValueError(f"{name} must be a Decimal in ({low}, {top}, got {value!r}")
        if self.data_stale_timeout <= timedelta(0) or self.breaker_pause < timedelta(0):
            raise ValueError("data_stale_timeout must be positive and breaker_pause not negative")
        if self.breaker_max_retries < 0:
            raise ValueError(f"breaker_max_retries must be >= 0, got {self.breaker_max_retries}")

    @classmethod
    def from_settings(cls, settings: Any) -> RiskLimits:
        """Read the risk settings (duck-typed: any object with the `Settings` attribute names)."""
        return cls(
            max_daily_drawdown_pct=_decimal(settings.max_daily_drawdown_pct),
            max_slippage_pct=_decimal(settings.max_slippage_pct),
            max_spread_multiplier=_decimal(settings.max_spread_multiplier),
            data_stale_timeout=timedelta(seconds=int(settings.data_stale_timeout_sec)),
            max_exposure_pct=_decimal(settings.max_exposure_pct),
            max_position_pct=_decimal(settings.max_position_pct),
            stop_loss_pct=_decimal(settings.stop_loss_pct),
        )


def _within(value: Decimal, low: Decimal, high: Decimal | None, inclusive: bool) -> bool:
    if value <= low or high is None:
        return value > low
    return value <= high if inclusive else value < high


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


# Operator controls and state helpers ----------------------------------------------------------


def halt_kind(state: RiskState) -> str | None:
    """`"drawdown"`, `"operator"` or `"circuit_breaker"` while halted, else None."""
    if not state.halted:
        return None
    return (state.halt_reason or HALT_OPERATOR).split(":", 1)[0].strip()


def halt(state: RiskState, reason: str, now: datetime) -> RiskState:
    """Operator halt: no new entries until `resume`. Exits (stop-losses) still go through.

    `reason` is free text stored as `"operator: <reason>"`. A state that is already halted is
    returned unchanged, so an operator halt never masks a drawdown halt (which `resume` could
    then clear).
    """
    _require_utc(now)
    if state.halted:
        return state
    detail = reason.strip()
    return replace(
        state,
        halted=True,
        halt_reason=f"{HALT_OPERATOR}: {detail}" if detail else HALT_OPERATOR,
        halted_at=now,
    )


def resume(state: RiskState) -> RiskState:
    """Operator resume: clears an operator or circuit-breaker halt, the breaker pause and its trip
    count, and the stale-data pause.

    Raises ValueError for a drawdown halt: that one needs an explicit `release_drawdown`.
    A state that is not halted still has its pauses cleared (a manual "retry now").
    """
    if halt_kind(state) == HALT_DRAWDOWN:
        raise ValueError(
            "trading is halted by the daily drawdown limit; resume cannot clear that, "
            "use release_drawdown (the drawdown-release control) instead"
        )
    return replace(
        state,
        halted=False,
        halt_reason=None,
        halted_at=None,
        breaker_paused_until=None,
        breaker_trips=0,
        stale_paused=False,
    )


def release_drawdown(state: RiskState) -> RiskState:
    """Operator release of a drawdown halt. Pauses are left alone: they recover by themselves.

    Idempotent: a state not halted by the drawdown is returned unchanged (an operator or
    breaker halt is cleared with `resume`). Releasing while today's drawdown is still at or
    over the limit is pointless: the next `check_state` or `decide` halts again.
    """
    if halt_kind(state) != HALT_DRAWDOWN:
        return state
    return replace(state, halted=False, halt_reason=None, halted_at=None)


def _with_halt(state: RiskState, kind: str, detail: str, now: datetime) -> RiskState:
    """Halt for `kind`; an existing halt stays unless a drawdown halt replaces another kind."""
    if state.halted and (kind != HALT_DRAWDOWN or halt_kind(state) == HALT_DRAWDOWN):
        return state
    return replace(state, halted=True, halt_reason=f"{kind}: {detail}", halted_at=now)


def check_state(
    portfolio: PortfolioState, state: RiskState, limits: RiskLimits, now: datetime
) -> tuple[RiskState, tuple[Alert, ...]]:
    """Layer 1 without a signal (after every run / mark-to-market): halt on a drawdown breach.

    Alerts once, when the halt is imposed; an existing drawdown halt is left as is.
    """
    _require_utc(now)
    with localcontext(prec=PRECISION):
        drawdown = portfolio.daily_drawdown_pct
        if drawdown < limits.max_daily_drawdown_pct:
            return state, ()
        new_state = _with_halt(state, HALT_DRAWDOWN, _drawdown_detail(drawdown, limits), now)
        if new_state == state:
            return state, ()
        return new_state, (_drawdown_alert(drawdown, limits, now),)


def check_freshness(
    state: RiskState, data_time: datetime | None, limits: RiskLimits, now: datetime
) -> tuple[RiskState, tuple[Alert, ...]]:
    """Layer 3 without a signal: a run that brought no fresh data still pauses new orders.

    `data_time` is when the newest stored market data was current (None: there is none).
    Alerts once, when the pause begins; fresh data lifts the pause.
    """
    _require_utc(now)
    timeout = limits.data_stale_timeout
    if data_time is not None and now - data_time <= timeout:
        return replace(state, stale_paused=False), ()
    if state.stale_paused:
        return state, ()
    age = (
        "no market data yet"
        if data_time is None
        else (f"newest market data is {(now - data_time).total_seconds():g} s old")
    )
    alert = Alert(
        AlertCode.DATA_STALE,
        AlertLevel.WARNING,
        f"{age} (timeout {timeout.total_seconds():g} s): new orders paused until fresh data "
        "arrives",
        now,
    )
    return replace(state, stale_paused=True), (alert,)


# Layer 6 outside a decision ------------------------------------------------------------------


def stop_price(entry_price: Decimal, limits: RiskLimits) -> Decimal:
    """The price at or below which a long position bought at `entry_price` is closed."""
    with localcontext(prec=PRECISION):
        return entry_price * (ONE - limits.stop_loss_pct)


def stop_loss_exits(
    portfolio: PortfolioState, prices: Mapping[str, Decimal], limits: RiskLimits, now: datetime
) -> list[Signal]:
    """Layer 6: a SELL of the whole position for every symbol whose price fell to its stop.

    Symbols without a price in `prices` are skipped. Sorted by symbol. The signals still go
    through `decide` (layers 2 and 3 apply to exits), which raises the stop-loss alert.
    """
    _require_utc(now)
    exits = []
    for symbol in sorted(portfolio.positions):
        position = portfolio.positions[symbol]
        price = prices.get(symbol)
        if position.qty <= 0 or price is None:
            continue
        stop = stop_price(position.avg_entry, limits)
        if price <= stop:
            reason = (
                f"{STOP_LOSS_REASON}: price {price} <= stop {stop} "
                f"(entry {position.avg_entry}, -{_pct(limits.stop_loss_pct)})"
            )
            exits.append(
                Signal(
                    symbol=symbol,
                    direction=Side.SELL,
                    size=position.qty,
                    signal_strength=ONE,
                    timestamp=now,
                    price=price,
                    reason=reason,
                    is_exit=True,
                )
            )
    return exits


# The decision --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Run:
    """One decision in progress: inputs, the state as it evolves, and what was recorded."""

    signal: Signal
    portfolio: PortfolioState
    market: MarketView
    limits: RiskLimits
    now: datetime
    state: RiskState
    size: Decimal  # the working size: clipped to the position for a SELL, trimmed for a BUY
    verdicts: list[LayerVerdict] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    walk: BookWalk | None = None  # layer 2's estimate for the requested size

    @property
    def is_exit(self) -> bool:
        return self.signal.direction is Side.SELL

    @property
    def position(self) -> Position | None:
        return self.portfolio.positions.get(self.signal.symbol)

    @property
    def held_qty(self) -> Decimal:
        position = self.position
        return position.qty if position and position.qty > 0 else ZERO

    def record(self, name: str, passed: bool, action: str, values: dict[str, Any]) -> bool:
        shown = {key: _show(value) for key, value in values.items()}
        self.verdicts.append(LayerVerdict(LAYERS.index(name) + 1, name, passed, action, shown))
        return passed

    def alert(self, code: AlertCode, level: AlertLevel, message: str) -> None:
        self.alerts.append(Alert(code, level, message, self.now, self.signal.symbol))

    def decision(self, stop: Decimal | None = None) -> RiskDecision:
        rejected = next((v.name for v in self.verdicts if not v.passed), None)
        return RiskDecision(
            approved=rejected is None,
            size=ZERO if rejected else self.size,
            verdicts=tuple(self.verdicts),
            alerts=tuple(self.alerts),
            state=self.state,
            rejected_by=rejected,
            stop_price=None if rejected else stop,
        )


def decide(
    signal: Signal,
    portfolio: PortfolioState,
    market: MarketView,
    state: RiskState,
    limits: RiskLimits,
    now: datetime,
) -> RiskDecision:
    """Run the six layers in order for one signal; stop at the first that rejects.

    Raises ValueError for a signal that can't be checked at all (size not positive, market
    data for another symbol, naive datetimes). A SELL without a position to sell runs layer 1
    like an entry (a drawdown breach halts whatever the signal) and is then rejected by
    `position_size`; layers 2 to 4 are skipped: there is no order to price, and a nonsense
    SELL must not trip the breaker.
    """
    _validate(signal, market, now)
    with localcontext(prec=PRECISION):
        run = _Run(signal, portfolio, market, limits, now, state, signal.size)
        if run.is_exit:
            run.size = min(signal.size, run.held_qty)
        if not _daily_drawdown(run):
            return run.decision()
        if run.is_exit and run.size <= 0:
            values = {"requested": signal.size, "position_qty": run.held_qty}
            reason = {"reason": "long-only: no position to sell"}
            run.record(POSITION_SIZE, False, "reject", values | reason)
            return run.decision()
        layers: tuple[Callable[[_Run], bool], ...] = (
            _market_anomaly,
            _data_staleness,
            _exposure,
            _position_size,
        )
        for layer in layers:
            if not layer(run):
                return run.decision()
        return run.decision(_stop_loss(run))


def _validate(signal: Signal, market: MarketView, now: datetime) -> None:
    _require_utc(now)
    if signal.size <= 0:
        raise ValueError(f"signal size must be positive, got {signal.size}")
    if signal.symbol != market.symbol:
        raise ValueError(f"market data is for {market.symbol}, the signal for {signal.symbol}")
    if market.data_time.utcoffset() is None:
        raise ValueError("market.data_time must be timezone-aware (UTC)")


def _require_utc(now: datetime) -> None:
    if now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime (UTC)")


# Layer 1 -------------------------------------------------------------------------------------


def _daily_drawdown(run: _Run) -> bool:
    limits, portfolio = run.limits, run.portfolio
    drawdown = portfolio.daily_drawdown_pct
    if drawdown >= limits.max_daily_drawdown_pct:
        halted = _with_halt(run.state, HALT_DRAWDOWN, _drawdown_detail(drawdown, limits), run.now)
        if halted != run.state:
            run.alerts.append(_drawdown_alert(drawdown, limits, run.now))
            run.state = halted
    values = {
        "equity": portfolio.equity,
        "day_start_equity": portfolio.day_start_equity,
        "drawdown_pct": drawdown,
        "limit": limits.max_daily_drawdown_pct,
        "halted": run.state.halted,
        "halt_reason": run.state.halt_reason,
    }
    if run.is_exit and run.size > 0:
        return run.record(DAILY_DRAWDOWN, True, "pass (exit)", values)
    if run.state.halted:
        return run.record(DAILY_DRAWDOWN, False, "halt", values)
    return run.record(DAILY_DRAWDOWN, True, "pass", values)


def _drawdown_detail(drawdown: Decimal, limits: RiskLimits) -> str:
    return f"{_pct(drawdown)} >= {_pct(limits.max_daily_drawdown_pct)}"


def _drawdown_alert(drawdown: Decimal, limits: RiskLimits, now: datetime) -> Alert:
    message = (
        f"daily drawdown {_pct(drawdown)} reached the {_pct(limits.max_daily_drawdown_pct)} "
        "limit: trading halted until an operator releases it"
    )
    return Alert(AlertCode.RISK_LIMIT, AlertLevel.CRITICAL, message, now)


# Layer 2 -------------------------------------------------------------------------------------


def _market_anomaly(run: _Run) -> bool:
    state, limits, now = run.state, run.limits, run.now
    paused_until = state.breaker_paused_until
    if paused_until is not None and now < paused_until:
        values = {
            "paused_until": paused_until.isoformat(),
            "seconds_left": (paused_until - now).total_seconds(),
            "breaker_trips": state.breaker_trips,
        }
        return run.record(MARKET_ANOMALY, False, "pause", values)

    values, problems = _anomalies(run)
    if not problems:
        run.state = replace(state, breaker_paused_until=None, breaker_trips=0)
        return run.record(MARKET_ANOMALY, True, "pass", values)

    what = "; ".join(problems)
    run.state, alerts = trip_breaker(state, limits, now, what, run.signal.symbol)
    run.alerts.extend(alerts)
    action = "halt" if run.state.halted and not state.halted else "pause"
    values |= {
        "problems": what,
        "breaker_trips": run.state.breaker_trips,
        "paused_until": (now + limits.breaker_pause).isoformat(),
    }
    return run.record(MARKET_ANOMALY, False, action, values)


def trip_breaker(
    state: RiskState, limits: RiskLimits, now: datetime, detail: str, symbol: str | None = None
) -> tuple[RiskState, tuple[Alert, ...]]:
    """Trip the circuit breaker: pause new orders for `breaker_pause` (CIRCUIT_BREAKER WARNING).

    Layer 2 trips it; so may execution when a fill turns out worse than the slippage limit.
    More than `breaker_max_retries` trips in a row (no pass in between) escalate to a
    `circuit_breaker` halt (RISK_LIMIT CRITICAL) that needs `resume`; an existing halt is kept.
    """
    _require_utc(now)
    trips = state.breaker_trips + 1
    paused = replace(state, breaker_paused_until=now + limits.breaker_pause, breaker_trips=trips)
    where = f" on {symbol}" if symbol else ""
    alerts = [
        Alert(
            AlertCode.CIRCUIT_BREAKER,
            AlertLevel.WARNING,
            f"circuit breaker tripped{where} ({detail}): new orders paused for "
            f"{limits.breaker_pause.total_seconds():g} s (trip {trips}; "
            f"more than {limits.breaker_max_retries} in a row halt trading)",
            now,
            symbol,
        )
    ]
    if trips > limits.breaker_max_retries:
        halted = _with_halt(paused, HALT_BREAKER, f"{trips} trips in a row", now)
        if halted != paused:
            paused = halted
            message = (
                f"circuit breaker tripped {trips} times in a row{where}: "
                "trading halted until an operator resumes it"
            )
            alerts.append(Alert(AlertCode.RISK_LIMIT, AlertLevel.CRITICAL, message, now, symbol))
    return paused, tuple(alerts)


def _anomalies(run: _Run) -> tuple[dict[str, Any], list[str]]:
    """Walk the book for the order and compare slippage and spread with the limits."""
    market, limits, size = run.market, run.limits, run.size
    side = "asks" if run.signal.direction is Side.BUY else "bids"
    levels = market.asks if run.signal.direction is Side.BUY else market.bids
    run.walk = walk = walk_book(levels, size)
    best, avg = (levels[0][0] if levels else None), walk.avg_price
    slippage = slippage_pct(avg, best) if avg is not None and best else None
    spread, typical = market.spread_pct, market.typical_spread_pct
    spread_limit = limits.max_spread_multiplier * typical if typical is not None else None

    problems = []
    if walk.filled_qty < size:
        problems.append(f"book too thin: {walk.filled_qty} of {size} fillable from the {side}")
    if slippage is not None and slippage > limits.max_slippage_pct:
        problems.append(f"slippage {_pct(slippage)} > {_pct(limits.max_slippage_pct)}")
    if spread is not None and spread < 0:
        problems.append("crossed book: best ask below best bid")
    elif spread is not None and spread_limit is not None and spread > spread_limit:
        problems.append(
            f"spread {_pct(spread)} > {limits.max_spread_multiplier} x typical {_pct(typical)}"
        )
    values = {
        "side": side,
        "size": size,
        "best_price": best,
        "filled_qty": walk.filled_qty,
        "estimated_avg_price": avg,
        "slippage_pct": slippage,
        "max_slippage_pct": limits.max_slippage_pct,
        "spread_pct": spread,
        "typical_spread_pct": typical,
        "multiplier": limits.max_spread_multiplier,
        "spread_limit_pct": spread_limit,
    }
    return values, problems


# Layer 3 -------------------------------------------------------------------------------------


def _data_staleness(run: _Run) -> bool:
    """Pause while the data is older than the timeout; alert once, when the pause begins."""
    age = run.now - run.market.data_time
    timeout = run.limits.data_stale_timeout
    values = {
        "data_time": run.market.data_time.isoformat(),
        "age_seconds": age.total_seconds(),
        "timeout_seconds": timeout.total_seconds(),
    }
    if age <= timeout:
        run.state = replace(run.state, stale_paused=False)
        return run.record(DATA_STALENESS, True, "pass", values)
    if not run.state.stale_paused:
        run.alert(
            AlertCode.DATA_STALE,
            AlertLevel.WARNING,
            f"market data for {run.signal.symbol} is {age.total_seconds():g} s old (timeout "
            f"{timeout.total_seconds():g} s): new orders paused until fresh data arrives",
        )
    run.state = replace(run.state, stale_paused=True)
    return run.record(DATA_STALENESS, False, "pause", values)


# Layers 4 and 5 ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sizing:
    """The portfolio right after a BUY, with the symbol valued at `price`."""

    price: Decimal  # max(estimated fill, last price)
    held_qty: Decimal
    equity_after: Decimal  # independent of the size: buying at `price` and marking at it
    other_exposure: Decimal  # every other symbol
    allowed_size: Decimal  # what layer 5 lets through: the signal's size, maybe trimmed

    def position_after(self, size: Decimal) -> Decimal:
        return (self.held_qty + size) * self.price

    def exposure_after(self, size: Decimal) -> Decimal:
        return self.other_exposure + self.position_after(size)


def _sizing(run: _Run) -> _Sizing:
    assert run.walk is not None and run.walk.avg_price is not None  # layer 2 passed
    price = max(run.walk.avg_price, run.market.last_price)
    position = run.position
    held = position.qty if position else ZERO
    held_value = position.market_value if position else ZERO
    equity_after = run.portfolio.equity - held_value + held * price
    cap = run.limits.max_position_pct * equity_after
    with localcontext(rounding=ROUND_FLOOR):
        room = cap / price - held if price > 0 else ZERO
        step = run.market.qty_step or TRIM_QUANTUM
        room = _strip(room.quantize(step)) if room > 0 else ZERO
    return _Sizing(
        price=price,
        held_qty=held,
        equity_after=equity_after,
        other_exposure=run.portfolio.exposure - held_value,
        allowed_size=min(run.signal.size, room),
    )


def _exposure(run: _Run) -> bool:
    """Block a BUY that would take the exposure over the limit; alert above 80 % of it."""
    limits = run.limits
    if run.is_exit:
        values = {"exposure_before": run.portfolio.exposure, "equity": run.portfolio.equity}
        return run.record(EXPOSURE, True, "pass (exit)", values)
    sizing = _sizing(run)
    after = sizing.exposure_after(sizing.allowed_size)
    limit_value = limits.max_exposure_pct * sizing.equity_after
    values = {
        "exposure_before": run.portfolio.exposure,
        "equity_before": run.portfolio.equity,
        "valued_at_price": sizing.price,
        "size": sizing.allowed_size,
        "exposure_after": after,
        "equity_after": sizing.equity_after,
        "exposure_pct_after": _ratio(after, sizing.equity_after),
        "limit": limits.max_exposure_pct,
        "limit_value": limit_value,
    }
    if sizing.equity_after <= 0 or after > limit_value:
        run.alert(
            AlertCode.RISK_LIMIT,
            AlertLevel.CRITICAL,
            f"BUY {run.signal.symbol} blocked: exposure after the order would be "
            f"{_ratio_pct(after, sizing.equity_after)} of equity "
            f"(limit {_pct(limits.max_exposure_pct)})",
        )
        return run.record(EXPOSURE, False, "block", values)
    if sizing.allowed_size > 0 and after > limits.exposure_alert_ratio * limit_value:
        run.alert(
            AlertCode.RISK_LIMIT,
            AlertLevel.CRITICAL,
            f"exposure above {_pct(limits.exposure_alert_ratio)} of limit: "
            f"{_ratio_pct(after, sizing.equity_after)} of equity after BUY {run.signal.symbol} "
            f"(limit {_pct(limits.max_exposure_pct)})",
        )
    return run.record(EXPOSURE, True, "pass", values)


def _position_size(run: _Run) -> bool:
    """Trim a BUY to the position limit (reject if nothing is left); clip a SELL to the qty."""
    signal = run.signal
    if run.is_exit:
        values = {"requested": signal.size, "position_qty": run.held_qty, "size": run.size}
        clipped = run.size < signal.size
        return run.record(POSITION_SIZE, True, "trim" if clipped else "pass (exit)", values)
    sizing = _sizing(run)
    size = sizing.allowed_size
    values = {
        "valued_at_price": sizing.price,
        "position_value_before": sizing.position_after(ZERO),
        "position_value_after": sizing.position_after(size),
        "equity_after": sizing.equity_after,
        "limit": run.limits.max_position_pct,
        "limit_value": run.limits.max_position_pct * sizing.equity_after,
        "requested": signal.size,
        "size": size,
    }
    if size <= 0:
        return run.record(POSITION_SIZE, False, "reject", values | {"reason": "position at limit"})
    run.size = size
    if size < signal.size:
        run.alert(
            AlertCode.RISK_LIMIT,
            AlertLevel.WARNING,
            f"position trimmed: {signal.symbol} {signal.size} → {size}",
        )
        values |= {"trimmed_from": signal.size, "trimmed_to": size}
        return run.record(POSITION_SIZE, True, "trim", values)
    return run.record(POSITION_SIZE, True, "pass", values)


# Layer 6 -------------------------------------------------------------------------------------


def _stop_loss(run: _Run) -> Decimal | None:
    """Set the stop for an approved entry; alert when a stop-loss exit goes through."""
    if run.is_exit:
        values = {"size": run.size, "reason": run.signal.reason}
        if run.signal.reason.startswith(STOP_LOSS_REASON):
            run.alert(
                AlertCode.RISK_LIMIT,
                AlertLevel.WARNING,
                f"stop-loss exit: SELL {run.size} {run.signal.symbol} ({run.signal.reason})",
            )
        run.record(STOP_LOSS, True, "pass (exit)", values)
        return None
    levels = run.market.asks
    estimate = walk_book(levels, run.size).avg_price
    assert estimate is not None  # layer 2 found the book deep enough for a larger size
    stop = _plain(stop_price(estimate, run.limits))
    values = {
        "estimated_entry_price": estimate,
        "stop_loss_pct": run.limits.stop_loss_pct,
        "stop_price": stop,
    }
    run.record(STOP_LOSS, True, "set_stop", values)
    return stop


# Formatting for verdicts and alerts ---------------------------------------------------------


def _strip(value: Decimal) -> Decimal:
    """The same number without trailing zeros: 1.000 -> 1, 0.50 -> 0.5, 100 stays 100."""
    return value.quantize(ONE) if value == value.to_integral_value() else value.normalize()


def _plain(value: Decimal) -> Decimal:
    """`value` at the default 28-digit precision: exact values of that size are unchanged, only
    the long tails of quotients are cut."""
    with localcontext(prec=28):
        return +value


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        return str(_plain(value))
    return str(value)


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if denominator <= 0:
        return None
    with localcontext(prec=12):
        return +(numerator / denominator)


def _pct(fraction: Decimal) -> str:
    with localcontext(prec=12):
        return f"{(fraction * 100).normalize():f} %"


def _ratio_pct(numerator: Decimal, denominator: Decimal) -> str:
    ratio = _ratio(numerator, denominator)
    return "n/a (no equity)" if ratio is None else _pct(ratio)
