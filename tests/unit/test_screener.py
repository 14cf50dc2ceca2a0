from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.domain.market import Market, Ticker24h
from app.domain.screener import screen

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def ticker(symbol, change, quote_volume="1000000"):
    return Ticker24h(
        symbol=symbol,
        last_price=Decimal("1"),
        price_change=None,
        price_change_fraction=Decimal(change),
        prev_close_price=None,
        open_price=None,
        high_price=None,
        low_price=None,
        bid_price=None,
        bid_qty=None,
        ask_price=None,
        ask_qty=None,
        volume=None,
        quote_volume=None if quote_volume is None else Decimal(quote_volume),
        open_time=None,
        close_time=NOW,
    )


def market(symbol, status="1", spot=True, quote="USDT"):
    return Market(
        symbol=symbol,
        base_asset=symbol.removesuffix(quote),
        quote_asset=quote,
        status=status,
        is_spot_trading_allowed=spot,
        base_asset_precision=4,
        quote_asset_precision=2,
        min_notional=Decimal("5"),
        min_qty=Decimal("0.0001"),
        maker_commission=Decimal("0"),
        taker_commission=Decimal("0.0005"),
    )


def test_top_movers_by_absolute_change_among_online_usdt_pairs():
    tickers = [
        ticker("AUSDT", "0.01"),
        ticker("BUSDT", "-0.20"),
        ticker("CUSDT", "0.15"),
        ticker("DUSDT", "0.50"),  # paused
        ticker("EUSDT", "0.40", quote_volume="10"),  # too little volume
        ticker("FBTC", "0.90"),  # not a USDT pair
        ticker("GUSDT", "0.30"),  # not in exchangeInfo
    ]
    markets = {
        m.symbol: m
        for m in [
            market("AUSDT"),
            market("BUSDT"),
            market("CUSDT"),
            market("DUSDT", status="2"),
            market("EUSDT"),
            market("FBTC", quote="BTC"),
        ]
    }
    result = screen(tickers, markets, whitelist=[], min_quote_volume=Decimal("1000"), top_n=2)
    assert [t.symbol for t in result.selected] == ["BUSDT", "CUSDT"]
    assert {t.symbol for t in result.universe} == {"AUSDT", "BUSDT", "CUSDT"}
    assert result.rejections == []


def test_whitelist_reports_what_drops_out():
    tickers = [
        ticker("AUSDT", "0.01"),
        ticker("BUSDT", "0.02", quote_volume="5"),
        ticker("CUSDT", "0.03"),
    ]
    markets = {m.symbol: m for m in [market("AUSDT"), market("BUSDT"), market("CUSDT", spot=False)]}
    result = screen(
        tickers,
        markets,
        whitelist=["AUSDT", "BUSDT", "CUSDT", "ZZZUSDT"],
        min_quote_volume=Decimal("100"),
        top_n=10,
    )
    assert [t.symbol for t in result.selected] == ["AUSDT"]
    reasons = {r.symbol: r.reason for r in result.rejections}
    assert "MIN_QUOTE_VOLUME" in reasons["BUSDT"]
    assert "not tradable" in reasons["CUSDT"]
    assert "not in MEXC" in reasons["ZZZUSDT"]


def test_ties_break_by_quote_volume_then_symbol():
    tickers = [
        ticker("BUSDT", "0.1", "10"),
        ticker("AUSDT", "-0.1", "10"),
        ticker("CUSDT", "0.1", "99"),
    ]
    result = screen(tickers, {}, whitelist=[], min_quote_volume=Decimal(0), top_n=3)
    assert [t.symbol for t in result.selected] == ["CUSDT", "AUSDT", "BUSDT"]


def test_missing_change_or_volume_is_not_eligible():
    tickers = [ticker("AUSDT", "0.1", None), ticker("BUSDT", "0.1")]
    tickers[1] = Ticker24h(
        **{
            **{f: getattr(tickers[1], f) for f in Ticker24h.__slots__},
            "price_change_fraction": None,
        }
    )
    result = screen(tickers, {}, whitelist=[], min_quote_volume=Decimal(1), top_n=3)
    assert result.selected == []
