"""MEXC's spot WebSocket wire format: the .proto definitions and a codec for them."""

from app.exchange.proto.codec import (
    AggreDepth,
    BookTicker,
    Deal,
    Deals,
    Frame,
    FrameDecodeError,
    Kline,
    LimitDepth,
    MiniTicker,
    MiniTickers,
    PriceLevel,
    decode,
    encode,
)

__all__ = [
    "AggreDepth",
    "BookTicker",
    "Deal",
    "Deals",
    "Frame",
    "FrameDecodeError",
    "Kline",
    "LimitDepth",
    "MiniTicker",
    "MiniTickers",
    "PriceLevel",
    "decode",
    "encode",
]
