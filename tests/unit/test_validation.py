from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.domain.market import Kline, OrderBook, Ticker24h
from app.domain.validation import check_book, check_klines, check_ticker

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 21, 8, 0, 30, tzinfo=UTC)
STALE = timedelta(seconds=30)
D = Decimal


def good_ticker(**changes):
    base = Ticker24h(
        symbol="BTCUSDT",
        last_price=D("100"),
        price_change=D("1"),
        price_change_fraction=D("0.01"),
        prev_close_price=D("99"),
        open_price=D("99"),
        high_price=D("101"),
        low_price=D("98"),
        bid_price=D("99.9"),
        bid_qty=D("1"),
        ask_price=D("100.1"),
        ask_qty=D("2"),
        volume=D("10"),
        quote_volume=D("1000"),
        open_time=NOW - timedelta(days=1),
        close_time=NOW - timedelta(seconds=1),
    )
    return replace(base, **changes)


def klines(n=5, end=NOW, step=60, **changes):
    start = end.replace(second=0) - timedelta(seconds=step * (n - 1))
    rows = [
        Kline(
            open_time=start + timedelta(seconds=step * i),
            open=D("100"),
            high=D("102"),
            low=D("99"),
            close=D("101"),
            volume=D("3"),
            close_time=start + timedelta(seconds=step * (i + 1)) - timedelta(milliseconds=1),
            quote_volume=D("300"),
        )
        for i in range(n)
    ]
    if changes:
        rows[-1] = rows[-1]._replace(**changes)
    return rows


def test_good_ticker_passes():
    assert check_ticker(good_ticker(), NOW, STALE) == []


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"last_price": D("0")}, "lastPrice is not positive"),
        ({"last_price": D("-3")}, "lastPrice is not positive"),
        ({"last_price": D("NaN")}, "not finite"),
        ({"last_price": D("Infinity")}, "not finite"),
        ({"last_price": None}, "lastPrice missing"),
        ({"close_time": NOW + timedelta(minutes=5)}, "in the future"),
        ({"close_time": NOW - timedelta(seconds=31)}, "stale"),
        ({"bid_price": D("101"), "ask_price": D("100")}, "crossed"),
        ({"volume": D("-1")}, "negative"),
    ],
)
def test_bad_ticker_is_rejected_with_a_reason(changes, fragment):
    reasons = check_ticker(good_ticker(**changes), NOW, STALE)
    assert any(fragment in r for r in reasons), reasons


def test_empty_optional_fields_are_fine():
    assert check_ticker(good_ticker(bid_qty=None, quote_volume=None), NOW, STALE) == []


def test_klines_pass_and_fail():
    assert check_klines(klines(), "1m", NOW, STALE) == []
    assert "no klines" in check_klines([], "1m", NOW, STALE)[0]
    assert check_klines(klines(close=D("0")), "1m", NOW, STALE)
    assert any("bound" in r for r in check_klines(klines(high=D("100.5")), "1m", NOW, STALE))
    assert any(
        "future" in r
        for r in check_klines(klines(end=NOW + timedelta(minutes=3)), "1m", NOW, STALE)
    )
    stale = check_klines(klines(end=NOW - timedelta(minutes=5)), "1m", NOW, STALE)
    assert any("stale" in r for r in stale)
    rows = klines()
    assert any("not after" in r for r in check_klines([*rows, rows[0]], "1m", NOW, STALE))


def test_book_checks():
    book = OrderBook(
        "BTCUSDT",
        1,
        bids=((D("99"), D("1")), (D("98"), D("2"))),
        asks=((D("100"), D("1")), (D("101"), D("3"))),
    )
    assert check_book(book) == []
    assert check_book(replace(book, bids=())) == ["empty book side"]
    crossed = replace(book, bids=((D("100.5"), D("1")),))
    assert "crossed" in check_book(crossed)[0]
    unordered = replace(book, asks=((D("101"), D("1")), (D("100"), D("1"))))
    assert "ascending" in check_book(unordered)[0]
    zero_qty = replace(book, asks=((D("100"), D("0")),))
    assert "qty not positive" in check_book(zero_qty)[0]
