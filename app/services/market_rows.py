"""Database rows from the exchange's domain objects (and markets back), for the
market-data stage's bulk upserts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from app.domain import market as dm
from app.models import Market


def domain_market(m: Market) -> dm.Market:
    return dm.Market(
        symbol=m.symbol,
        base_asset=m.base_asset,
        quote_asset=m.quote_asset,
        status=m.status,
        is_spot_trading_allowed=m.is_spot_trading_allowed,
        base_asset_precision=m.base_asset_precision,
        quote_asset_precision=m.quote_asset_precision,
        min_notional=m.min_notional,
        min_qty=m.min_qty,
        maker_commission=m.maker_commission,
        taker_commission=m.taker_commission,
        max_quote_amount=m.max_quote_amount,
        full_name=m.full_name,
    )


def market_row(m: dm.Market, now: datetime) -> dict[str, Any]:
    return {
        "symbol": m.symbol,
        "base_asset": m.base_asset,
        "quote_asset": m.quote_asset,
        "status": m.status,
        "is_spot_trading_allowed": m.is_spot_trading_allowed,
        "base_asset_precision": m.base_asset_precision,
        "quote_asset_precision": m.quote_asset_precision,
        "min_notional": m.min_notional,
        "min_qty": m.min_qty,
        "maker_commission": m.maker_commission,
        "taker_commission": m.taker_commission,
        "max_quote_amount": m.max_quote_amount,
        "full_name": m.full_name,
        "updated_at": now,
    }


def ticker_row(t: dm.Ticker24h, run_id: int, screened: bool) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "symbol": t.symbol,
        "last_price": t.last_price,
        "price_change_pct": t.price_change_pct,
        "open_price": t.open_price,
        "high_price": t.high_price,
        "low_price": t.low_price,
        "bid_price": t.bid_price,
        "bid_qty": t.bid_qty,
        "ask_price": t.ask_price,
        "ask_qty": t.ask_qty,
        "volume": t.volume,
        "quote_volume": t.quote_volume,
        "open_time": t.open_time,
        "close_time": t.close_time,
        "screened": screened,
    }


def latest_row(t: dm.Ticker24h, run_id: int) -> dict[str, Any]:
    return {
        "symbol": t.symbol,
        "run_id": run_id,
        "last_price": t.last_price,
        "bid_price": t.bid_price,
        "ask_price": t.ask_price,
        "close_time": t.close_time,
    }


def kline_row(symbol: str, interval: str, k: dm.Kline, run_id: int) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "interval": interval,
        "open_time": k.open_time,
        "open": k.open,
        "high": k.high,
        "low": k.low,
        "close": k.close,
        "volume": k.volume,
        "close_time": k.close_time,
        "quote_volume": k.quote_volume,
        "run_id": run_id,
    }


def book_row(book: dm.OrderBook, run_id: int, now: datetime) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "symbol": book.symbol,
        "last_update_id": book.last_update_id,
        "best_bid": book.best_bid,
        "best_ask": book.best_ask,
        "bids": [[_plain(p), _plain(q)] for p, q in book.bids],
        "asks": [[_plain(p), _plain(q)] for p, q in book.asks],
        "fetched_at": book.fetched_at or now,
    }


def _plain(value: Decimal) -> str:
    """The number without an exponent, as format(value, "f") writes it (str() is the same
    whenever it writes no exponent, and several times faster: a run stores 20,000 of these)."""
    text = str(value)
    return format(value, "f") if "E" in text else text
