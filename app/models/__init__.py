"""SQLAlchemy models; importing this package registers every table on Base.metadata."""

from app.models.base import Base, ExactDecimal, UTCDateTime
from app.models.market import BookSnapshot, Kline, Market, TickerSnapshot
from app.models.runs import MarketDataRun

__all__ = [
    "Base",
    "BookSnapshot",
    "ExactDecimal",
    "Kline",
    "Market",
    "MarketDataRun",
    "TickerSnapshot",
    "UTCDateTime",
]
