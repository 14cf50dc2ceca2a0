"""Invariants of the risk manager on arbitrary sequences of signals, prices and books.

A tiny pure simulation fills every approved order at the book-walk price and marks the
symbol either at that fill or at the last price (both conventions must keep the limits).
"""

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from decimal import localcontext
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.book import walk_book
from app.domain.risk import (
    LAYERS,
    RiskLimits,
    check_state,
    decide,
    halt,
    halt_kind,
    release_drawdown,
    resume,
    stop_loss_exits,
)
from app.domain.trading import (
    MarketView,
    PortfolioState,
    Position,
    RiskDecision,
    RiskState,
    Side,
    Signal,
)

pytestmark = pytest.mark.unit

SYMBOLS = ("AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT")
START = datetime(2024, 5, 1, 22, 0, tzinfo=UTC)  # close to midnight: sequences cross days
OPERATOR_ACTIONS = ("none",) * 30 + ("halt",) + ("resume", "release") * 3
PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache  # building strategies is slow; these are immutable, so build each one once
def decimals(low: str, high: str, places: int) -> st.SearchStrategy[D]:
    scale = 10**places
    lo, hi = int(D(low) * scale), int(D(high) * scale)
    return st.integers(lo, hi).map(lambda n: D(n).scaleb(-places))


@st.composite
def limits_strategy(draw) -> RiskLimits:
    return RiskLimits(
        max_daily_drawdown_pct=draw(decimals("0.01", "0.20", 2)),
        max_slippage_pct=draw(decimals("0.001", "0.05", 3)),
        max_spread_multiplier=draw(decimals("2", "10", 1)),
        data_stale_timeout=timedelta(seconds=draw(st.integers(10, 120))),
        max_exposure_pct=draw(decimals("0.10", "1.00", 2)),
        max_position_pct=draw(decimals("0.01", "0.25", 2)),
        stop_loss_pct=draw(decimals("0.005", "0.10", 3)),
    )


@st.composite
def books(draw, price: D) -> tuple[tuple, tuple, D | None]:
    """Bids and asks around `price` (possibly skewed away from it), and a typical spread."""
    calm = draw(st.booleans())  # calm books pass layer 2 more often than not
    center = price * (1 + draw(decimals("-0.02", "0.02", 3)))
    half = draw(decimals("0.0001", "0.002" if calm else "0.02", 4))
    step = draw(decimals("0", "0.002" if calm else "0.03", 4))

    def side(sign: int) -> tuple:
        count = draw(st.integers(1 if calm else 0, 4))
        sizes = [draw(decimals("1" if calm else "0.01", "40", 2)) for _ in range(count)]
        return tuple((center * (1 + sign * (half + i * step)), q) for i, q in enumerate(sizes))

    typical = draw(st.none() | decimals("0.001" if calm else "0.0001", "0.01", 4))
    return side(-1), side(1), typical


@dataclass(frozen=True)
class Step:
    seconds: int
    symbol: str
    move: D
    data_age: int
    side: Side
    size: D
    is_exit: bool
    operator: str
    mark_at_fill: bool
    book: tuple


@st.composite
def steps(draw) -> Step:
    return Step(
        seconds=draw(st.sampled_from((0, 1, 20, 45, 61, 90, 600, 3600, 86_400))),
        symbol=draw(st.sampled_from(SYMBOLS)),
        move=draw(decimals("0.5", "1.3", 2)),  # a downward drift: drawdowns and stops
        data_age=draw(st.integers(0, 9) | st.integers(0, 150)),
        side=draw(st.sampled_from((Side.BUY, Side.BUY, Side.SELL))),
        size=draw(decimals("0.01", "6", 2)),
        is_exit=draw(st.booleans()),
        operator=draw(st.sampled_from(OPERATOR_ACTIONS)),
        mark_at_fill=draw(st.booleans()),
        book=draw(books(D(100))),  # relative shape, rescaled to the symbol's price
    )


@dataclass
class Sim:
    limits: RiskLimits
    now: datetime = START
    state: RiskState = field(default_factory=RiskState)
    portfolio: PortfolioState = field(
        default_factory=lambda: PortfolioState(D(1000), day_start_equity=D(1000), day=START.date())
    )
    prices: dict[str, D] = field(default_factory=lambda: dict.fromkeys(SYMBOLS, D(100)))
    drawdown_latched: bool = False  # a drawdown halt happened and was not released

    def roll_day(self) -> None:
        if self.portfolio.day != self.now.date():
            equity = self.portfolio.equity
            self.portfolio = replace(self.portfolio, day_start_equity=equity, day=self.now.date())

    def mark(self, symbol: str, price: D) -> None:
        self.prices[symbol] = price
        position = self.portfolio.positions.get(symbol)
        if position:
            self.set_position(replace(position, last_price=price))

    def set_position(self, position: Position) -> None:
        positions = dict(self.portfolio.positions)
        if position.qty > 0:
            positions[position.symbol] = position
        else:
            positions.pop(position.symbol, None)
        self.portfolio = replace(self.portfolio, positions=positions)

    def fill(self, signal: Signal, decision: RiskDecision, market: MarketView, at_fill: bool):
        levels = market.asks if signal.direction is Side.BUY else market.bids
        walk = walk_book(levels, decision.size)
        assert walk.filled_qty == decision.size  # layer 2 saw a deep enough book
        price = walk.avg_price
        held = self.portfolio.positions.get(signal.symbol)
        qty, entry = (held.qty, held.avg_entry) if held else (D(0), D(0))
        mark = price if at_fill else market.last_price
        if signal.direction is Side.BUY:
            new_qty = qty + decision.size
            entry = (qty * entry + walk.cost) / new_qty
            cash = self.portfolio.cash - walk.cost
        else:
            assert decision.size <= qty
            new_qty = qty - decision.size
            cash = self.portfolio.cash + walk.cost
        self.portfolio = replace(self.portfolio, cash=cash)
        self.set_position(Position(signal.symbol, new_qty, entry, mark))


def blocked_for_entries(state: RiskState, market: MarketView, limits: RiskLimits, now) -> bool:
    paused = state.breaker_paused_until is not None and now < state.breaker_paused_until
    stale = now - market.data_time > limits.data_stale_timeout
    return state.halted or paused or stale


def assert_well_formed(decision: RiskDecision) -> None:
    names = [v.name for v in decision.verdicts]
    if decision.approved:
        assert names == list(LAYERS) and decision.rejected_by is None
        assert decision.size > 0
    else:
        assert decision.size == 0 and decision.rejected_by == names[-1]
        sell_of_nothing = ["daily_drawdown", "position_size"]
        assert names == list(LAYERS[: len(names)]) or names == sell_of_nothing
        assert all(v.passed for v in decision.verdicts[:-1])


def assert_within_limits(portfolio: PortfolioState, symbol: str, limits: RiskLimits) -> None:
    equity = portfolio.equity
    assert portfolio.exposure <= limits.max_exposure_pct * equity
    position = portfolio.positions[symbol]
    assert position.market_value <= limits.max_position_pct * equity


def assert_drawdown_halts(sim: Sim) -> None:
    if sim.portfolio.daily_drawdown_pct >= sim.limits.max_daily_drawdown_pct:
        sim.drawdown_latched = True
    if sim.drawdown_latched:
        assert halt_kind(sim.state) == "drawdown"


def operate(sim: Sim, action: str) -> None:
    if action == "halt":
        sim.state = halt(sim.state, "property test", sim.now)
    elif action == "release":
        sim.state = release_drawdown(sim.state)
        sim.drawdown_latched = False
    elif action == "resume":
        if halt_kind(sim.state) == "drawdown":
            with pytest.raises(ValueError):
                resume(sim.state)
        else:
            sim.state = resume(sim.state)


def play(sim: Sim, step: Step) -> None:
    sim.now += timedelta(seconds=step.seconds)
    sim.roll_day()
    price = max(D("0.01"), (sim.prices[step.symbol] * step.move).quantize(D("0.0001")))
    sim.mark(step.symbol, price)

    sim.state, _ = check_state(sim.portfolio, sim.state, sim.limits, sim.now)
    assert_drawdown_halts(sim)
    operate(sim, step.operator)

    symbol = step.symbol
    held = sorted(sim.portfolio.positions)
    if step.side is Side.SELL and held:  # mostly sell something we hold
        symbol = held[SYMBOLS.index(symbol) % len(held)]
        price = sim.prices[symbol]
    scale = price / 100
    bids, asks, typical = step.book
    market = MarketView(
        symbol,
        price,
        tuple((p * scale, q) for p, q in bids),
        tuple((p * scale, q) for p, q in asks),
        sim.now - timedelta(seconds=step.data_age),
        typical,
    )
    exits = stop_loss_exits(sim.portfolio, {symbol: price}, sim.limits, sim.now)
    signal = (
        exits[0]
        if exits
        else Signal(symbol, step.side, step.size, D("0.5"), sim.now, price, "test", step.is_exit)
    )
    before = sim.state
    decision = decide(signal, sim.portfolio, market, before, sim.limits, sim.now)
    assert_well_formed(decision)
    sim.state = decision.state
    assert_drawdown_halts(sim)

    if signal.direction is Side.BUY and decision.approved:
        assert not blocked_for_entries(before, market, sim.limits, sim.now)
        assert not decision.state.halted
        assert decision.stop_price is not None
    if decision.approved:
        sim.fill(signal, decision, market, step.mark_at_fill)
        if signal.direction is Side.BUY:
            assert_within_limits(sim.portfolio, signal.symbol, sim.limits)
    assert all(p.qty > 0 for p in sim.portfolio.positions.values())


@PROPS
@given(limits_strategy(), st.lists(steps(), min_size=5, max_size=30))
def test_invariants_hold_on_any_sequence(limits, sequence):
    with localcontext(prec=80):  # so the checks below are exact
        sim = Sim(limits)
        for step in sequence:
            play(sim, step)


# Focused properties: one decision from an arbitrary portfolio --------------------------------


@st.composite
def portfolios(draw) -> PortfolioState:
    positions = {}
    for symbol in draw(st.lists(st.sampled_from(SYMBOLS), unique=True)):
        qty = draw(decimals("0.01", "5", 2))
        positions[symbol] = Position(
            symbol, qty, draw(decimals("1", "200", 2)), draw(decimals("1", "200", 2))
        )
    cash = draw(decimals("0", "2000", 2))
    start = draw(st.none() | decimals("100", "3000", 2))
    return PortfolioState(cash, positions, day_start_equity=start)


@st.composite
def markets(draw, symbol: str, now: datetime) -> MarketView:
    last = draw(decimals("1", "200", 2))
    bids, asks, typical = draw(books(last))
    age = timedelta(seconds=draw(st.integers(0, 150)))
    return MarketView(symbol, last, bids, asks, now - age, typical)


@st.composite
def states(draw, now: datetime) -> RiskState:
    kind = draw(st.sampled_from((None, "drawdown", "operator", "circuit_breaker")))
    paused = draw(st.none() | st.integers(-120, 120).map(lambda s: now + timedelta(seconds=s)))
    return RiskState(
        halted=kind is not None,
        halt_reason=kind,
        halted_at=now if kind else None,
        breaker_paused_until=paused,
        breaker_trips=draw(st.integers(0, 10)),
        stale_paused=draw(st.booleans()),
    )


@st.composite
def cases(draw):
    now = START + timedelta(seconds=draw(st.integers(0, 10**6)))
    symbol = draw(st.sampled_from(SYMBOLS))
    signal = Signal(
        symbol,
        draw(st.sampled_from(Side)),
        draw(decimals("0.01", "10", 2)),
        D(1),
        now,
        D(100),
        "test",
        draw(st.booleans()),
    )
    return now, signal, draw(portfolios()), draw(markets(symbol, now)), draw(states(now))


@PROPS
@given(limits_strategy(), cases(), st.booleans())
def test_one_approved_buy_keeps_exposure_and_position_within_limits(limits, case, mark_at_fill):
    now, signal, portfolio, market, state = case
    with localcontext(prec=80):
        decision = decide(signal, portfolio, market, state, limits, now)
        assert_well_formed(decision)
        if signal.direction is Side.BUY and decision.approved:
            assert not blocked_for_entries(state, market, limits, now)
            sim = Sim(limits, now=now, state=state, portfolio=portfolio)
            sim.fill(signal, decision, market, mark_at_fill)
            assert_within_limits(sim.portfolio, signal.symbol, limits)
        if signal.direction is Side.SELL and decision.approved:
            assert decision.size <= portfolio.positions[signal.symbol].qty


@settings(PROPS, max_examples=100)
@given(limits_strategy(), cases(), st.lists(cases(), min_size=1, max_size=3))
def test_a_drawdown_breach_halts_until_released(limits, first, later):
    now, signal, portfolio, market, state = first
    start = (portfolio.equity + D("0.01")) / (1 - limits.max_daily_drawdown_pct)  # just over
    breached = replace(portfolio, day_start_equity=start)
    decision = decide(signal, breached, market, state, limits, now)
    assert halt_kind(decision.state) == "drawdown"
    assert not (signal.direction is Side.BUY and decision.approved)
    halted = decision.state
    for i, (_, signal, portfolio, market, _) in enumerate(later, 1):
        next_day = now + timedelta(days=i)  # drawdown reset: any portfolio, any day
        fresh = replace(market, data_time=next_day)
        decision = decide(signal, portfolio, fresh, halted, limits, next_day)
        assert halt_kind(decision.state) == "drawdown"
        assert not (signal.direction is Side.BUY and decision.approved)
        halted, _ = check_state(portfolio, decision.state, limits, next_day)
        assert halt_kind(halted) == "drawdown"
    assert not release_drawdown(halted).halted
