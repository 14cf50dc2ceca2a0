"""What the market-data stage stores: markets, ticker snapshots, klines, books."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class Market(Base):
    """A symbol's trading rules from exchangeInfo, refreshed hourly."""

    __tablename__ = "markets"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    base_asset: Mapped[str] = mapped_column(String(16))
    quote_asset: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(8))
    is_spot_trading_allowed: Mapped[bool]
    base_asset_precision: Mapped[int]
    quote_asset_precision: Mapped[int]
    min_notional: Mapped[Decimal | None]
    min_qty: Mapped[Decimal | None]
    maker_commission: Mapped[Decimal | None]
    taker_commission: Mapped[Decimal | None]
    max_quote_amount: Mapped[Decimal | None]
    full_name: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime]


class TickerSnapshot(Base):
    """One symbol's 24h ticker as seen by one market-data run."""

    __tablename__ = "ticker_snapshots"
    __table_args__ = (UniqueConstraint("run_id", "symbol"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("market_data_runs.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    last_price: Mapped[Decimal]
    price_change_pct: Mapped[Decimal | None]  # percent: 1.73 means +1.73 %
    open_price: Mapped[Decimal | None]
    high_price: Mapped[Decimal | None]
    low_price: Mapped[Decimal | None]
    bid_price: Mapped[Decimal | None]
    bid_qty: Mapped[Decimal | None]
    ask_price: Mapped[Decimal | None]
    ask_qty: Mapped[Decimal | None]
    volume: Mapped[Decimal | None]
    quote_volume: Mapped[Decimal | None]
    open_time: Mapped[datetime | None]
    close_time: Mapped[datetime]
    screened: Mapped[bool] = mapped_column(default=False)


class Kline(Base):
    """A candle; the in-progress last candle is updated in place by later runs."""

    __tablename__ = "klines"
    __table_args__ = (
        UniqueConstraint("symbol", "interval", "open_time"),
        Index("ix_klines_open_time", "open_time"),  # retention deletes by age
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    interval: Mapped[str] = mapped_column(String(4))
    open_time: Mapped[datetime]
    open: Mapped[Decimal]
    high: Mapped[Decimal]
    low: Mapped[Decimal]
    close: Mapped[Decimal]
    volume: Mapped[Decimal]
    close_time: Mapped[datetime]
    quote_volume: Mapped[Decimal | None]
    # The run that stored its current values (a run that fetched it again unchanged leaves
    # the row as it is).
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("market_data_runs.id", ondelete="SET NULL")
    )


class BookSnapshot(Base):
    """The order book (depth) of one symbol as fetched by one run; levels as exact strings."""

    __tablename__ = "book_snapshots"
    __table_args__ = (UniqueConstraint("run_id", "symbol"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("market_data_runs.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    last_update_id: Mapped[int | None] = mapped_column(BigInteger)
    best_bid: Mapped[Decimal]
    best_ask: Mapped[Decimal]
    bids: Mapped[list[Any]]
    asks: Mapped[list[Any]]
    fetched_at: Mapped[datetime]


class LatestTicker(Base):
    """The newest stored ticker of each symbol: what every stage, scrape and page asks for
    ("the latest price") in one indexed lookup, however long the history grows."""

    __tablename__ = "latest_tickers"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[int]
    last_price: Mapped[Decimal]
    bid_price: Mapped[Decimal | None]
    ask_price: Mapped[Decimal | None]
    close_time: Mapped[datetime]


class UniverseSnapshot(Base):
    """Every eligible pair's price as one run saw it in the all-tickers answer, compressed
    into one row: the price history the strategy screens the whole universe with.

    `data` is zlib-compressed JSON: {"symbols": [...], "last": [...], "change_pct": [...],
    "quote_volume": [...]} with exact decimal strings (see app.services.universe)."""

    __tablename__ = "universe_snapshots"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("market_data_runs.id", ondelete="CASCADE"), primary_key=True
    )
    taken_at: Mapped[datetime] = mapped_column(index=True)
    symbols: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
