from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.paper import taker_fee
from app.domain.portfolio import (
    affordable_qty,
    apply_fill,
    daily_pnl,
    mark_to_market,
    new_portfolio,
    roll_day,
)
from app.domain.trading import Fill, PortfolioState, Side

pytestmark = pytest.mark.unit

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def fill(side: Side, qty: str, price: str, fee: str, symbol: str = "BTCUSDT") -> Fill:
    q, p = D(qty), D(price)
    return Fill(symbol, side, q, p, q * p, D(fee), D(0), 1)


def test_new_portfolio_starts_the_day_with_the_capital():
    p = new_portfolio(D("1000"), T0)
    assert p.cash == D("1000") and p.positions == {}
    assert p.day == T0.date() and p.day_start_equity == D("1000")
    assert p.realized_pnl == 0 and p.fees_paid == 0 and p.equity == D("1000")
    with pytest.raises(ValueError, match="positive"):
        new_portfolio(D("0"), T0)


def test_round_trip_cash_and_realized_pnl_include_both_fees():
    p = new_portfolio(D("1000"), T0)
    p, buy_pnl = apply_fill(p, fill(Side.BUY, "2", "100", "0.1"))
    assert p.cash == D("799.9")
    assert buy_pnl == D("-0.1")  # fees are expensed when paid
    pos = p.positions["BTCUSDT"]
    assert (pos.qty, pos.avg_entry, pos.last_price) == (D("2"), D("100"), D("100"))
    assert p.equity == D("999.9")

    p, sell_pnl = apply_fill(p, fill(Side.SELL, "2", "110", "0.11"))
    assert sell_pnl == D("19.89")  # 2 * (110 - 100) - 0.11
    assert p.cash == D("1019.79")  # 799.9 + 220 - 0.11
    assert p.realized_pnl == D("19.79")  # 220 - 200 - 0.1 - 0.11
    assert p.fees_paid == D("0.21")
    assert p.positions == {}  # a flat position is removed
    assert p.equity == D("1019.79")


def test_states_are_new_objects_and_the_input_is_untouched():
    p0 = new_portfolio(D("1000"), T0)
    p1, _ = apply_fill(p0, fill(Side.BUY, "1", "100", "0"))
    assert p0.positions == {} and p0.cash == D("1000")
    p2 = mark_to_market(p1, {"BTCUSDT": D("90")})
    assert p1.positions["BTCUSDT"].last_price == D("100")
    assert p2.positions["BTCUSDT"].last_price == D("90")


def test_averaging_up_and_a_partial_sell():
    p = new_portfolio(D("1000"), T0)
    p, _ = apply_fill(p, fill(Side.BUY, "1", "100", "0.05"))
    p, _ = apply_fill(p, fill(Side.BUY, "3", "120", "0.18"))
    pos = p.positions["BTCUSDT"]
    assert pos.qty == D("4") and pos.avg_entry == D("115")  # (100 + 360) / 4, fees excluded
    assert pos.last_price == D("120")
    assert p.cash == D("539.77")  # 1000 - 100.05 - 360.18

    p, pnl = apply_fill(p, fill(Side.SELL, "1", "130", "0.065"))
    assert pnl == D("14.935")  # 130 - 115 - 0.065
    pos = p.positions["BTCUSDT"]
    assert (pos.qty, pos.avg_entry, pos.last_price) == (D("3"), D("115"), D("130"))
    assert p.realized_pnl == D("14.705")  # 14.935 - 0.05 - 0.18: the buy fees, paid earlier
    assert p.fees_paid == D("0.295")


def test_mark_to_market_equity_and_exposure():
    p = new_portfolio(D("1000"), T0)
    p, _ = apply_fill(p, fill(Side.BUY, "2", "100", "0"))
    p, _ = apply_fill(p, fill(Side.BUY, "10", "5", "0", symbol="ETHUSDT"))
    p = mark_to_market(p, {"BTCUSDT": D("90"), "ETHUSDT": D("6"), "XRPUSDT": D("1")})
    assert p.cash == D("750")
    assert p.exposure == D("240")  # 2 * 90 + 10 * 6
    assert p.equity == D("990")
    assert p.exposure_pct == D("240") / D("990")
    assert p.positions["BTCUSDT"].unrealized_pnl == D("-20")
    assert p.positions["ETHUSDT"].unrealized_pnl == D("10")
    assert "XRPUSDT" not in p.positions
    partial = mark_to_market(p, {"ETHUSDT": D("7")})
    assert partial.positions["BTCUSDT"].last_price == D("90")  # unchanged
    with pytest.raises(ValueError, match="positive"):
        mark_to_market(p, {"BTCUSDT": D("0")})


def test_roll_day_restarts_the_daily_pnl_at_midnight_utc():
    p = new_portfolio(D("1000"), T0)
    p, _ = apply_fill(p, fill(Side.BUY, "2", "100", "0"))
    p = mark_to_market(p, {"BTCUSDT": D("95")})
    assert daily_pnl(p) == D("-10")
    assert p.daily_drawdown_pct == D("0.01")

    same_day = roll_day(p, datetime(2024, 3, 1, 23, 59, 59, tzinfo=UTC))
    assert same_day is p
    # 01:00 at UTC+2 on the 2nd is still 23:00 UTC on the 1st
    plus_two = timezone(timedelta(hours=2))
    assert roll_day(p, datetime(2024, 3, 2, 1, 0, tzinfo=plus_two)) is p

    rolled = roll_day(p, datetime(2024, 3, 2, 0, 0, tzinfo=UTC))
    assert rolled.day == datetime(2024, 3, 2).date()
    assert rolled.day_start_equity == D("990")
    assert daily_pnl(rolled) == 0
    assert rolled.cash == p.cash and rolled.positions == p.positions
    assert roll_day(rolled, datetime(2024, 3, 1, 12, tzinfo=UTC)) is rolled  # clock went back
    later = mark_to_market(rolled, {"BTCUSDT": D("100")})
    assert daily_pnl(later) == D("10")
    assert daily_pnl(PortfolioState(cash=D("5"))) == 0


def test_buy_beyond_the_cash_is_refused():
    p = new_portfolio(D("1000"), T0)
    with pytest.raises(ValueError, match="insufficient cash") as info:
        apply_fill(p, fill(Side.BUY, "10", "100", "0.5"))
    assert "1000.5" in str(info.value)
    p, _ = apply_fill(p, fill(Side.BUY, "9", "111", "1"))  # 999 + 1: exactly all the cash
    assert p.cash == 0


def test_selling_more_than_held_or_nothing_is_refused():
    p = new_portfolio(D("1000"), T0)
    with pytest.raises(ValueError, match="holds 0"):
        apply_fill(p, fill(Side.SELL, "1", "100", "0"))
    p, _ = apply_fill(p, fill(Side.BUY, "1", "100", "0"))
    with pytest.raises(ValueError, match="holds 1"):
        apply_fill(p, fill(Side.SELL, "1.5", "100", "0"))


def test_affordable_quantity_leaves_room_for_the_fee():
    p = new_portfolio(D("1000"), T0)
    # 100.05 * 9.9950 = 999.99975 fits; 100.05 * 9.9951 = 1000.0097 does not
    assert affordable_qty(p, D("100"), D("0.0005"), qty_precision=4) == D("9.9950")
    assert affordable_qty(p, D("100"), D("0"), qty_precision=2) == D("9.99")  # fee quantum kept
    assert affordable_qty(PortfolioState(cash=D("0")), D("100"), D("0.0005")) == 0
    with pytest.raises(ValueError, match="price"):
        affordable_qty(p, D("0"), D("0.0005"))


@settings(max_examples=200, deadline=None)
@given(
    cash=st.decimals(min_value=1, max_value=100_000, places=2),
    price=st.decimals(min_value=D("0.00000001"), max_value=100_000, places=8),
    rate=st.decimals(min_value=0, max_value=D("0.002"), places=4),
)
def test_the_affordable_quantity_is_always_affordable(cash, price, rate):
    p = PortfolioState(cash=cash)
    qty = affordable_qty(p, price, rate, qty_precision=8)
    if qty > 0:
        notional = qty * price
        apply_fill(p, Fill("X", Side.BUY, qty, price, notional, taker_fee(notional, rate), 0, 1))


prices = st.decimals(min_value=D("0.01"), max_value=D("50000"), places=2)
steps = st.lists(
    st.tuples(
        st.sampled_from(["A", "B"]),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.decimals(min_value=D("0.01"), max_value=1, places=2),  # fraction of what is possible
        prices,
        st.sampled_from([D("0"), D("0.0005"), D("0.001")]),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps, marks=st.tuples(prices, prices))
def test_equity_change_equals_realized_plus_unrealized(steps, marks):
    initial = D("10000")
    p = new_portfolio(initial, T0)
    fees = D(0)
    realized_sum = D(0)
    for symbol, side, fraction, price, rate in steps:
        if side is Side.BUY:
            qty = (affordable_qty(p, price, rate, qty_precision=4) * fraction).quantize(D("0.0001"))
        else:
            held = p.positions.get(symbol)
            qty = (held.qty * fraction).quantize(D("0.0001")) if held else D(0)
        if qty <= 0:
            continue
        notional = qty * price
        f = Fill(symbol, side, qty, price, notional, taker_fee(notional, rate), D(0), 1)
        p, realized = apply_fill(p, f)
        fees += f.fee
        realized_sum += realized
        assert p.cash >= 0
        assert all(pos.qty > 0 for pos in p.positions.values())
    p = mark_to_market(p, {"A": marks[0], "B": marks[1]})
    unrealized = sum((pos.unrealized_pnl for pos in p.positions.values()), D(0))

    assert p.fees_paid == fees
    assert p.realized_pnl == realized_sum
    # fees are inside realized_pnl; arithmetic runs at 28 significant digits (avg_entry is a
    # division), so the tolerance is relative to the largest amount involved: a position
    # bought at 0.01 and marked at 50000 is worth up to 1e17, where one digit in 28 is 1e-11.
    scale = max(initial, p.cash, p.exposure, abs(unrealized), abs(p.realized_pnl))
    assert abs(p.cash + p.exposure - initial - (p.realized_pnl + unrealized)) <= scale * D("1e-24")
