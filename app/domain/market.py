"""Market data as the domain sees it: exact Decimals, UTC datetimes, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

# MEXC accepts exactly these kline intervals; "1h" is rejected with code -1121.
KLINE_INTERVALS: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "60m": 3600,
    "4h": 14400,
    "1d": 86400,
    "1W": 604800,
    "1M": 2592000,  # nominal 30 days, used only to size look-back windows
}


def candle_open(t: datetime, interval: str) -> datetime:
    """When the candle of `interval` holding `t` opened (UTC): MEXC's alignment — minutes
    and hours on the epoch grid, 1d at 00:00, 1W on Monday 00:00, 1M on the 1st."""
    t = t.astimezone(UTC)
    if interval == "1M":
        return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if interval == "1W":
        day = t.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    seconds = KLINE_INTERVALS[interval]
    epoch = int(t.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True, slots=True)
class Market:
    """One symbol's trading rules from exchangeInfo."""

    symbol: str
    base_asset: str
    quote_asset: str
    status: str  # "1" online, "2" paused, "3" offline ("ENABLED" in older docs maps to "1")
    is_spot_trading_allowed: bool
    base_asset_precision: int  # quantity step is 10**-base_asset_precision
    quote_asset_precision: int  # price tick is 10**-quote_asset_precision
    min_notional: Decimal | None  # quoteAmountPrecision: minimum order amount in quote currency
    min_qty: Decimal | None  # baseSizePrecision: minimum order quantity
    maker_commission: Decimal | None
    taker_commission: Decimal | None
    max_quote_amount: Decimal | None = None
    full_name: str | None = None

    @property
    def is_tradable(self) -> bool:
        return self.status == "1" and self.is_spot_trading_allowed


@dataclass(frozen=True, slots=True)
class Ticker24h:
    """A 24h rolling ticker. Any field MEXC may send as "" or null is optional."""

    symbol: str
    last_price: Decimal | None
    price_change: Decimal | None
    price_change_fraction: Decimal | None  # MEXC's priceChangePercent: 0.0173 means +1.73 %
    prev_close_price: Decimal | None
    open_price: Decimal | None
    high_price: Decimal | None
    low_price: Decimal | None
    bid_price: Decimal | None
    bid_qty: Decimal | None
    ask_price: Decimal | None
    ask_qty: Decimal | None
    volume: Decimal | None
    quote_volume: Decimal | None
    open_time: datetime | None
    close_time: datetime | None

    @property
    def price_change_pct(self) -> Decimal | None:
        """The 24h change in percent (1.73 for MEXC's "0.0173")."""
        if self.price_change_fraction is None:
            return None
        return self.price_change_fraction.scaleb(2)


class Kline(NamedTuple):  # a tuple: thousands are read and parsed every cycle
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time: datetime
    quote_volume: Decimal | None


@dataclass(frozen=True, slots=True)
class BookTicker:
    symbol: str
    bid_price: Decimal | None
    bid_qty: Decimal | None
    ask_price: Decimal | None
    ask_qty: Decimal | None


@dataclass(frozen=True, slots=True)
class OrderBook:
    """Depth snapshot; levels are (price, qty), bids best-first descending, asks ascending."""

    symbol: str
    last_update_id: int | None
    bids: tuple[tuple[Decimal, Decimal], ...] = field(default_factory=tuple)
    asks: tuple[tuple[Decimal, Decimal], ...] = field(default_factory=tuple)
    fetched_at: datetime | None = None

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0][0] if self.asks else None
