from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from app.domain.paper import Broker, OrderRejected, PaperBroker
from app.domain.trading import MarketView, Side, SymbolRules

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)
ASKS = ((D("100"), D("1")), (D("101"), D("2")), (D("103"), D("5")))
BIDS = ((D("99"), D("1")), (D("98"), D("3")))


def rules(**overrides) -> SymbolRules:
    values = dict(
        symbol="BTCUSDT",
        qty_precision=2,
        price_precision=2,
        min_qty=D("0.01"),
        min_notional=D("5"),
        taker_fee=D("0.0005"),
    )
    values.update(overrides)
    return SymbolRules(**values)


def book(bids=BIDS, asks=ASKS, symbol="BTCUSDT") -> MarketView:
    return MarketView(symbol=symbol, last_price=D("100"), bids=bids, asks=asks, data_time=T0)


def broker(max_slippage: str = "0.01") -> Broker:
    return PaperBroker(max_slippage_pct=D(max_slippage))


def reject(qty, *, side=Side.BUY, view=None, symbol_rules=None, max_slippage="0.01"):
    with pytest.raises(OrderRejected) as info:
        broker(max_slippage).market_order(
            "BTCUSDT", side, D(qty), view or book(), symbol_rules or rules()
        )
    return info.value


def test_buy_walks_the_asks_and_charges_the_taker_fee():
    fill = broker().market_order("BTCUSDT", Side.BUY, D("2.5"), book(), rules())
    assert fill.symbol == "BTCUSDT" and fill.side is Side.BUY
    assert fill.qty == D("2.5")
    assert fill.avg_price == D("100.6")  # (100 + 1.5 * 101) / 2.5
    assert fill.notional == D("251.5")
    assert fill.fee == D("0.12575")  # 0.05 % of 251.5
    assert fill.slippage_pct == D("0.006")  # 0.6 / 100
    assert fill.levels_used == 2


def test_sell_walks_the_bids():
    fill = broker().market_order("BTCUSDT", Side.SELL, D("2"), book(), rules())
    assert fill.side is Side.SELL
    assert fill.avg_price == D("98.5")  # (99 + 98) / 2
    assert fill.notional == D("197")
    assert fill.fee == D("0.0985")
    assert round(fill.slippage_pct, 6) == D("0.005051")  # 0.5 / 99
    assert fill.levels_used == 2


def test_quantity_is_rounded_down_to_the_step_first():
    fill = broker().market_order("BTCUSDT", Side.BUY, D("2.509"), book(), rules())
    assert fill.qty == D("2.50") and fill.notional == D("251.5")
    whole = broker().market_order("BTCUSDT", Side.BUY, D("2.9"), book(), rules(qty_precision=0))
    assert whole.qty == D("2")
    assert whole.avg_price == D("100.5") and whole.notional == D("201")
    assert whole.fee == D("0.1005")


def test_average_price_rounds_half_up_to_the_tick():
    fill = broker().market_order("BTCUSDT", Side.BUY, D("3"), book(), rules())
    assert fill.avg_price == D("100.67")  # 302 / 3 = 100.666...
    assert fill.notional == D("302.01")  # qty * rounded price, not the walked cost
    assert fill.fee == D("0.151005")
    coarse = broker().market_order("BTCUSDT", Side.BUY, D("2"), book(), rules(price_precision=0))
    assert coarse.avg_price == D("101")  # 100.5 rounds half up, not to even
    assert coarse.notional == D("202")


def test_fee_is_rounded_up_to_eight_decimals():
    asks = ((D("10.00000002"), D("5")),)
    fill = broker().market_order(
        "BTCUSDT", Side.BUY, D("1"), book(asks=asks), rules(price_precision=8)
    )
    assert fill.notional == D("10.00000002")
    assert fill.fee == D("0.00500001")  # 0.00500000001 rounded up, never down
    free = broker().market_order("BTCUSDT", Side.BUY, D("1"), book(), rules(taker_fee=D("0")))
    assert free.fee == 0


@pytest.mark.parametrize("qty", ["0.004", "0", "-1", "NaN"])
def test_quantity_that_rounds_to_nothing_is_a_bad_qty(qty):
    assert reject(qty).reason == "bad_qty"


def test_below_minimum_quantity_names_the_values():
    error = reject("0.05", symbol_rules=rules(min_qty=D("0.1")))
    assert error.reason == "below_min_qty"
    assert "0.05" in error.detail and "0.1" in error.detail
    # 0.109 rounds down to 0.1 at one decimal: exactly the minimum is allowed
    fill = broker().market_order(
        "BTCUSDT", Side.BUY, D("0.109"), book(), rules(qty_precision=1, min_qty=D("0.1"))
    )
    assert fill.qty == D("0.1") and fill.notional == D("10.0")


def test_below_minimum_notional_names_the_values():
    error = reject("0.04")  # 0.04 * 100 = 4 USDT < 5
    assert error.reason == "below_min_notional"
    assert "4.00" in error.detail and "5" in error.detail
    fill = broker().market_order("BTCUSDT", Side.BUY, D("0.05"), book(), rules())
    assert fill.notional == D("5.00")  # exactly the minimum is allowed


def test_slippage_above_the_limit_is_refused():
    error = reject("2.5", max_slippage="0.005")  # fills 0.6 % away from the best ask
    assert error.reason == "slippage"
    assert "100.6" in error.detail and "0.005" in error.detail
    fill = broker("0.006").market_order("BTCUSDT", Side.BUY, D("2.5"), book(), rules())
    assert fill.slippage_pct == D("0.006")  # exactly at the limit passes


def test_thin_book_is_refused_without_a_partial_fill():
    error = reject("10")  # the asks hold 8
    assert error.reason == "thin_book"
    assert "8" in error.detail and "10" in error.detail
    assert reject("5", side=Side.SELL).reason == "thin_book"  # the bids hold 4


def test_empty_side_of_the_book_is_no_book():
    assert reject("1", view=book(asks=())).reason == "no_book"
    assert reject("1", side=Side.SELL, view=book(bids=())).reason == "no_book"


def test_rejection_message_carries_reason_and_detail():
    error = reject("10")
    assert str(error).startswith("thin_book: ")


def test_book_or_rules_of_another_symbol_is_a_programming_error():
    with pytest.raises(ValueError, match="ETHUSDT"):
        broker().market_order("BTCUSDT", Side.BUY, D("1"), book(symbol="ETHUSDT"), rules())
