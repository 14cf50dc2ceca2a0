from decimal import Decimal as D

import pytest

from app.domain.book import slippage_pct, walk_book

pytestmark = pytest.mark.unit

ASKS = ((D("100"), D("1")), (D("101"), D("2")), (D("103"), D("5")))


def test_walk_takes_levels_in_order():
    walk = walk_book(ASKS, D("2.5"))
    assert walk.filled_qty == D("2.5")
    assert walk.cost == D("100") + D("1.5") * D("101")  # 251.5
    assert walk.avg_price == D("251.5") / D("2.5")
    assert walk.levels_used == 2
    assert slippage_pct(walk.avg_price, D("100")) == D("0.006")


def test_thin_book_fills_partially_and_bad_qty_is_refused():
    walk = walk_book(ASKS, D("10"))
    assert walk.filled_qty == D("8") and walk.levels_used == 3
    with pytest.raises(ValueError, match="positive"):
        walk_book(ASKS, D("0"))
