from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from app.domain.market import Kline
from app.domain.strategies import MomentumStrategy, StrategyContext, get_strategy, register
from app.domain.strategies.momentum import window_candles
from app.domain.trading import Position, Side

pytestmark = pytest.mark.unit

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=16)


def candles(closes: list[str], last_open: str | None = None, minutes: int = 1) -> list[Kline]:
    """One candle per close; each opens at the previous close unless told otherwise."""
    out: list[Kline] = []
    prev = D(closes[0])
    for i, text in enumerate(closes):
        close = D(text)
        open_ = D(last_open) if last_open is not None and i == len(closes) - 1 else prev
        start = T0 + timedelta(minutes=i * minutes)
        out.append(
            Kline(
                open_time=start,
                open=open_,
                high=max(open_, close),
                low=min(open_, close),
                close=close,
                volume=D("1"),
                close_time=start + timedelta(minutes=minutes) - timedelta(milliseconds=1),
                quote_volume=None,
            )
        )
        prev = close
    return out


def ctx(closes: list[str], *, position: Position | None = None, **overrides) -> StrategyContext:
    values = dict(
        symbol="BTCUSDT",
        klines=candles(closes, overrides.pop("last_open", None)),
        ticker_price=D(closes[-1]),
        now=NOW,
        position=position,
        equity=D("1000"),
        max_position_pct=D("0.10"),
        lookback_minutes=15,
        interval="1m",
    )
    values.update(overrides)
    return StrategyContext(**values)


def flat_then(last: str) -> list[str]:
    """Sixteen 1m closes: the reference 15 minutes back is 100, the last one `last`."""
    return ["100"] * 15 + [last]


def held(qty: str = "0.5") -> Position:
    return Position("BTCUSDT", D(qty), D("100"), D("100"))


MOMENTUM = MomentumStrategy()


def signal_of(context: StrategyContext, strategy=MOMENTUM):
    return strategy.evaluate(context).signal


def outcome_of(context: StrategyContext, strategy=MOMENTUM) -> str:
    return strategy.evaluate(context).outcome


def test_entry_on_momentum_above_the_threshold_sized_from_equity():
    signal = signal_of(ctx(flat_then("101")))
    assert signal is not None
    assert signal.direction is Side.BUY and not signal.is_exit
    assert signal.signal_strength == D("0.5")  # 1 % / (4 * 0.5 %)
    assert signal.size == D("0.49504950")  # 1000 * 10 % * 0.5 / 101 = 0.4950495049...
    assert signal.price == D("101") and signal.symbol == "BTCUSDT"
    assert signal.timestamp == NOW
    assert "momentum +1.00 % over 15m" in signal.reason


def test_strength_is_capped_at_one():
    signal = signal_of(ctx(flat_then("103")))
    assert signal is not None and signal.signal_strength == 1
    assert signal.size == D("0.97087378")  # 100 / 103 = 0.970873786...


def test_entry_at_exactly_the_threshold_and_none_below_it():
    at = signal_of(ctx(flat_then("100.5")))
    assert at is not None and at.signal_strength == D("0.25")
    assert at.size == D("0.24875621")  # 25 / 100.5 = 0.248756218...
    below = MOMENTUM.evaluate(ctx(flat_then("100.4")))
    assert below.signal is None and below.outcome == "below_threshold"
    assert below.values["momentum_pct"] == "0.004"
    assert below.values["entry_threshold_pct"] == "0.005"
    assert below.reason == "momentum +0.40 % over 15m, below the 0.50 % entry threshold"


def test_no_entry_when_the_last_candle_is_down():
    down = MOMENTUM.evaluate(ctx(flat_then("101"), last_open="101.5"))
    assert down.signal is None and down.outcome == "last_candle_down"
    assert "open 101.5, close 101" in down.reason and down.values["last_open"] == "101.5"


def test_the_reference_is_the_close_a_lookback_ago():
    # 17 closes: 90 lies 16 minutes back, outside the window; 15 minutes back it is 100
    assert outcome_of(ctx(["90", *flat_then("100.4")])) == "below_threshold"
    # 5m candles: 15 minutes is 3 candles back
    five = ctx(["100", "99", "99", "101"], klines=candles(["100", "99", "99", "101"], minutes=5))
    assert signal_of(replace(five, interval="5m")) is not None
    short = MOMENTUM.evaluate(replace(five, interval="5m", klines=five.klines[1:]))
    assert short.outcome == "not_enough_candles" and short.signal is None


def test_a_lookback_between_candles_reaches_back_a_whole_candle_further():
    assert window_candles(15, "1m") == 15
    assert window_candles(7, "5m") == 2
    assert window_candles(15, "60m") == 1
    # 7 minutes of 5m candles: the reference is 2 candles back (99), not 1 (101)
    closes = ["99", "101", "101.5"]
    seven = ctx(closes, klines=candles(closes, minutes=5), interval="5m", lookback_minutes=7)
    signal = signal_of(seven)
    assert signal is not None and "+2.53 %" in signal.reason  # 2.5 / 99


def test_too_few_candles_give_no_signal():
    few = MOMENTUM.evaluate(ctx(flat_then("105")[1:]))
    assert few.outcome == "not_enough_candles" and few.signal is None
    assert few.reason == "15 1m candles stored, 16 needed for 15m of momentum"
    assert outcome_of(ctx(["100"], klines=[])) == "not_enough_candles"


def test_exit_sells_the_whole_position_when_momentum_reverses():
    signal = signal_of(ctx(flat_then("99.7"), position=held("0.5")))
    assert signal is not None
    assert signal.direction is Side.SELL and signal.is_exit
    assert signal.size == D("0.5")
    assert signal.signal_strength == D("0.25")  # 0.3 % / (4 * 0.3 %)
    assert "momentum -0.30 % over 15m" in signal.reason


def test_holding_without_a_reversal_does_nothing():
    hold = MOMENTUM.evaluate(ctx(flat_then("99.8"), position=held()))
    assert hold.outcome == "hold" and hold.signal is None
    assert hold.reason == "holding: momentum -0.20 % over 15m, above the -0.30 % exit threshold"
    assert outcome_of(ctx(flat_then("102"), position=held())) == "hold"  # no pyramiding
    # without a position a falling market is no signal either (long only)
    assert outcome_of(ctx(flat_then("95"))) == "below_threshold"


def test_thresholds_are_parameters():
    strict = get_strategy("momentum", entry_threshold="0.02", exit_threshold=0.01)
    assert signal_of(ctx(flat_then("101")), strict) is None
    assert signal_of(ctx(flat_then("99.5"), position=held()), strict) is None
    assert signal_of(ctx(flat_then("102")), strict) is not None


def test_same_input_same_output_and_now_only_stamps():
    context = ctx(flat_then("101"))
    assert MOMENTUM.evaluate(context) == MOMENTUM.evaluate(context)
    later = signal_of(replace(context, now=NOW + timedelta(hours=5)))
    assert later == replace(signal_of(context), timestamp=NOW + timedelta(hours=5))
    shuffled = replace(context, klines=list(reversed(context.klines)))
    assert MOMENTUM.evaluate(shuffled) == MOMENTUM.evaluate(context)


def test_no_equity_or_no_price_gives_no_entry():
    assert outcome_of(ctx(flat_then("101"), equity=D("0"))) == "no_price"
    assert outcome_of(ctx(flat_then("101"), ticker_price=D("0"))) == "no_price"


def test_bad_interval_and_lookback_are_errors():
    with pytest.raises(ValueError, match="1h"):
        MOMENTUM.evaluate(ctx(flat_then("101"), interval="1h"))
    with pytest.raises(ValueError, match="lookback"):
        MOMENTUM.evaluate(ctx(flat_then("101"), lookback_minutes=0))


def test_registry():
    strategy = get_strategy("momentum")
    assert strategy.name == "momentum" and isinstance(strategy, MomentumStrategy)
    with pytest.raises(ValueError, match=r"unknown strategy 'nope'.*momentum"):
        get_strategy("nope")
    with pytest.raises(ValueError, match="bad parameters"):
        get_strategy("momentum", window=3)
    with pytest.raises(ValueError, match="entry_threshold"):
        get_strategy("momentum", entry_threshold="0")
    with pytest.raises(ValueError, match="exit_threshold"):
        get_strategy("momentum", exit_threshold="abc")
    with pytest.raises(ValueError, match="already registered"):
        register("momentum")(MomentumStrategy)
