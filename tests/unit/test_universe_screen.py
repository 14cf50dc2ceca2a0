"""The strategy judges the whole universe from the all-tickers history with the same rule it
applies to a fetched symbol's candles."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.market import Kline, Ticker24h
from app.domain.strategies import MomentumStrategy, StrategyContext, UniverseView
from app.domain.strategies.base import SIGNAL_OUTCOMES
from app.domain.trading import Position
from app.services.universe import decode, encode, reference_times

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 30, 12, 7, 40, tzinfo=UTC)
MOMENTUM = MomentumStrategy()
prices = st.decimals(min_value=D("0.0001"), max_value=D("100000"), places=4)


def candles_for(reference: D, opened: D, now_price: D, n: int) -> list[Kline]:
    """n + 1 one-minute candles: the reference close n candles back, the last one opened at
    `opened` and trading at `now_price` (the ones between do not matter to the rule)."""
    start = NOW.replace(second=0) - timedelta(minutes=n)
    out = []
    for i in range(n + 1):
        t = start + timedelta(minutes=i)
        close = reference if i == 0 else (now_price if i == n else reference)
        open_ = opened if i == n else reference
        out.append(
            Kline(
                t,
                open_,
                max(open_, close),
                min(open_, close),
                close,
                D(1),
                t + timedelta(minutes=1),
                None,
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(
    reference=prices,
    opened=prices,
    now_price=prices,
    holding=st.booleans(),
    equity=st.decimals(min_value=D("0"), max_value=D("100000"), places=2),
)
def test_screening_the_universe_decides_like_the_candles_do(
    reference, opened, now_price, holding, equity
):
    position = Position("XUSDT", D("2"), reference, now_price) if holding else None
    view = UniverseView(
        now=NOW,
        interval="1m",
        lookback_minutes=15,
        latest={"XUSDT": now_price},
        candle_open={"XUSDT": opened},
        reference={"XUSDT": reference},
        history_minutes=30,
    )
    screened = MOMENTUM.screen(view, {"XUSDT": position} if position else {}, equity, D("0.1"))
    judged = MOMENTUM.evaluate(
        StrategyContext(
            symbol="XUSDT",
            klines=candles_for(reference, opened, now_price, 15),
            ticker_price=now_price,
            now=NOW,
            position=position,
            equity=equity,
            max_position_pct=D("0.1"),
            lookback_minutes=15,
            interval="1m",
        )
    )
    got = screened["XUSDT"]
    assert got.outcome == judged.outcome
    assert (got.signal is None) == (judged.signal is None)
    if got.signal is not None:
        assert (got.signal.direction, got.signal.size) == (
            judged.signal.direction,
            judged.signal.size,
        )
    assert got.values["momentum_pct"] == judged.values["momentum_pct"]


@settings(max_examples=300, deadline=None)
@given(
    reference=st.one_of(st.just(D(0)), prices),
    opened=prices,
    now_price=prices,
    qty=st.sampled_from([None, D(0), D("2")]),
    equity=st.decimals(min_value=D("0"), max_value=D("100000"), places=2),
    history=st.booleans(),
    skip=st.sampled_from([(), ("XUSDT",), ("NEWUSDT",)]),
)
def test_the_tally_counts_what_screening_decides_and_keeps_the_signals_whole(
    reference, opened, now_price, qty, equity, history, skip
):
    position = None if qty is None else Position("XUSDT", qty, opened, now_price)
    view = UniverseView(
        now=NOW,
        interval="1m",
        lookback_minutes=15,
        latest={"XUSDT": now_price, "NEWUSDT": now_price, "YUSDT": opened},
        candle_open={"XUSDT": opened, "YUSDT": reference} if history else None,
        reference={"XUSDT": reference, "YUSDT": now_price} if history else None,
        history_minutes=30 if history else 3,
    )
    positions = {} if position is None else {"XUSDT": position}
    screened = {
        symbol: evaluation
        for symbol, evaluation in MOMENTUM.screen(view, positions, equity, D("0.1")).items()
        if symbol not in skip
    }
    counts, signalled = MOMENTUM.tally(view, positions, equity, D("0.1"), skip=skip)
    assert counts == Counter(e.outcome for e in screened.values())
    assert signalled == {s: e for s, e in screened.items() if e.outcome in SIGNAL_OUTCOMES}


def test_the_tally_keeps_the_largest_moves_and_counts_every_one():
    moves = {"AUSDT": "1.02", "BUSDT": "1.05", "CUSDT": "1.01", "DUSDT": "1.05", "EUSDT": "1"}
    view = UniverseView(
        now=NOW,
        interval="1m",
        lookback_minutes=15,
        latest={symbol: D(move) for symbol, move in moves.items()},
        candle_open={symbol: D("0.999") for symbol in moves},
        reference={symbol: D(1) for symbol in moves},
        history_minutes=30,
    )
    counts, kept = MOMENTUM.tally(view, {}, D("1000"), D("0.1"), keep=3)
    assert counts == Counter(buy=4, below_threshold=1)  # every one counted
    assert list(kept) == ["BUSDT", "DUSDT", "AUSDT"]  # largest moves first, ties by symbol
    _, everything = MOMENTUM.tally(view, {}, D("1000"), D("0.1"))
    assert kept == {symbol: everything[symbol] for symbol in kept}  # the same verdicts, whole
    assert MOMENTUM.tally(view, {}, D("1000"), D("0.1"), keep=0)[1] == {}


def test_a_short_history_is_warming_up_and_a_new_symbol_says_so():
    view = UniverseView(NOW, "1m", 15, {"AUSDT": D("1")}, None, None, history_minutes=3)
    warm = MOMENTUM.screen(view, {}, D("1000"), D("0.1"))["AUSDT"]
    assert warm.outcome == "not_enough_candles" and "3 min back" in warm.reason
    view = UniverseView(NOW, "1m", 15, {"AUSDT": D("1"), "NEWUSDT": D("2")},
                        {"AUSDT": D("1")}, {"AUSDT": D("1")}, 60)  # fmt: skip
    fresh = MOMENTUM.screen(view, {}, D("1000"), D("0.1"))
    assert fresh["NEWUSDT"].outcome == "not_enough_candles" and "new" in fresh["NEWUSDT"].reason
    assert fresh["AUSDT"].outcome == "below_threshold"
    assert MOMENTUM.interest(view) == {"AUSDT": D(0)}


def test_reference_times_match_the_candles_of_the_look_back():
    opened, reference = reference_times(NOW, "1m", 15)
    assert opened == datetime(2026, 11, 30, 12, 7, tzinfo=UTC)
    # the close of the candle 15 candles before the current one
    assert reference == opened - timedelta(minutes=14)
    opened, reference = reference_times(NOW, "5m", 15)
    assert (opened.minute, reference.minute) == (5, 55)


def test_a_snapshot_keeps_every_price_exactly():
    tickers = [
        Ticker24h(
            f"S{i}USDT",
            D(f"{i}.000123400"),
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            NOW,
        )
        for i in range(1, 2501)
    ]
    count, data = encode(tickers)
    assert count == 2500 and len(data) < 40_000  # compact: one row per run

    class Row:
        run_id, taken_at = 7, NOW

    Row.data = data
    snapshot = decode(Row)
    assert snapshot.prices["S42USDT"] == D("42.000123400")
    assert str(snapshot.prices["S42USDT"]) == "42.000123400"
