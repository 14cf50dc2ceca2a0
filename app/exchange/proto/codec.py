"""Encode and decode MEXC spot push frames (PushDataV3ApiWrapper) as typed values.

    frame = decode(data)          # bytes of one binary WebSocket message
    frame.channel, frame.symbol, frame.send_time
    match frame.body:
        case BookTicker(bid_price=bid, ask_price=ask): ...
        case Deals(deals=deals): ...

decode raises FrameDecodeError (a ValueError) for bytes that are no wrapper, a wrapper with
no body this module knows, or a body whose numbers do not parse; the message says which.
Prices, quantities and rates are Decimals (None where MEXC sent an empty string), versions
and times ints. encode is the inverse (the simulator's side): encode(decode(b)) == b for
every frame encode produced.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from google.protobuf.message import DecodeError

from app.exchange.proto import schema


class FrameDecodeError(ValueError):
    """Bytes that are not a MEXC spot push frame this codec understands."""


@dataclass(frozen=True, slots=True)
class PriceLevel:
    price: Decimal
    quantity: Decimal  # 0 in a depth diff removes the level


@dataclass(frozen=True, slots=True)
class MiniTicker:
    symbol: str
    price: Decimal | None
    rate: Decimal | None  # change in the UTC+8 day, a fraction
    zoned_rate: Decimal | None  # change in the requested time zone's day
    high: Decimal | None  # rolling 24 h
    low: Decimal | None
    volume: Decimal | None  # quote amount
    quantity: Decimal | None  # base quantity
    last_close_rate: Decimal | None
    last_close_zoned_rate: Decimal | None
    last_close_high: Decimal | None
    last_close_low: Decimal | None


@dataclass(frozen=True, slots=True)
class MiniTickers:
    items: tuple[MiniTicker, ...]


@dataclass(frozen=True, slots=True)
class BookTicker:
    bid_price: Decimal | None
    bid_quantity: Decimal | None
    ask_price: Decimal | None
    ask_quantity: Decimal | None
    version: int | None
    last_order_create_time: int


@dataclass(frozen=True, slots=True)
class Deal:
    price: Decimal
    quantity: Decimal
    trade_type: int  # 1 buy, 2 sell: the taker's side
    time: int  # ms
    trade_id: str

    @property
    def is_buy(self) -> bool:
        return self.trade_type == 1


@dataclass(frozen=True, slots=True)
class Deals:
    deals: tuple[Deal, ...]
    event_type: str


@dataclass(frozen=True, slots=True)
class AggreDepth:
    """A depth diff: absolute quantities of the levels that changed."""

    asks: tuple[PriceLevel, ...]
    bids: tuple[PriceLevel, ...]
    event_type: str
    from_version: int
    to_version: int
    last_order_create_time: int


@dataclass(frozen=True, slots=True)
class LimitDepth:
    """The top levels of the book."""

    asks: tuple[PriceLevel, ...]
    bids: tuple[PriceLevel, ...]
    event_type: str
    version: int | None
    last_order_create_time: int


@dataclass(frozen=True, slots=True)
class Kline:
    interval: str  # Min1 ... Month1
    window_start: int  # seconds
    window_end: int  # seconds
    opening_price: Decimal
    closing_price: Decimal
    highest_price: Decimal
    lowest_price: Decimal
    volume: Decimal  # base
    amount: Decimal  # quote


Body = MiniTickers | MiniTicker | BookTicker | Deals | AggreDepth | LimitDepth | Kline


@dataclass(frozen=True, slots=True)
class Frame:
    channel: str
    body: Body
    symbol: str | None = None
    symbol_id: str | None = None
    create_time: int | None = None
    send_time: int | None = None


_BODY_FIELD = {
    MiniTickers: "publicMiniTickers",
    MiniTicker: "publicMiniTicker",
    BookTicker: "publicAggreBookTicker",
    Deals: "publicAggreDeals",
    AggreDepth: "publicAggreDepths",
    LimitDepth: "publicLimitDepths",
    Kline: "publicSpotKline",
}
_MINI_FIELDS = (
    ("symbol", "symbol"),
    ("price", "price"),
    ("rate", "rate"),
    ("zoned_rate", "zonedRate"),
    ("high", "high"),
    ("low", "low"),
    ("volume", "volume"),
    ("quantity", "quantity"),
    ("last_close_rate", "lastCloseRate"),
    ("last_close_zoned_rate", "lastCloseZonedRate"),
    ("last_close_high", "lastCloseHigh"),
    ("last_close_low", "lastCloseLow"),
)


# ---- encode --------------------------------------------------------------------------------


def _s(value: Decimal | int | None) -> str:
    if value is None:
        return ""
    return format(value, "f") if isinstance(value, Decimal) else str(value)


def _levels(target: Any, levels: tuple[PriceLevel, ...]) -> None:
    for level in levels:
        target.add(price=_s(level.price), quantity=_s(level.quantity))


def _fill_mini(target: Any, ticker: MiniTicker) -> None:
    for attr, field in _MINI_FIELDS:
        value = getattr(ticker, attr)
        setattr(target, field, value if attr == "symbol" else _s(value))


def _fill_body(wrapper: Any, body: Body) -> None:
    target = getattr(wrapper, _BODY_FIELD[type(body)])
    match body:
        case MiniTickers(items=items):
            target.SetInParent()
            for item in items:
                _fill_mini(target.items.add(), item)
        case MiniTicker():
            _fill_mini(target, body)
        case BookTicker():
            target.bidPrice = _s(body.bid_price)
            target.bidQuantity = _s(body.bid_quantity)
            target.askPrice = _s(body.ask_price)
            target.askQuantity = _s(body.ask_quantity)
            target.version = _s(body.version)
            target.lastOrderCreateTime = body.last_order_create_time
        case Deals():
            target.eventType = body.event_type
            for deal in body.deals:
                target.deals.add(
                    price=_s(deal.price),
                    quantity=_s(deal.quantity),
                    tradeType=deal.trade_type,
                    time=deal.time,
                    tradeId=deal.trade_id,
                )
        case AggreDepth():
            _levels(target.asks, body.asks)
            _levels(target.bids, body.bids)
            target.eventType = body.event_type
            target.fromVersion = str(body.from_version)
            target.toVersion = str(body.to_version)
            target.lastOrderCreateTime = body.last_order_create_time
        case LimitDepth():
            _levels(target.asks, body.asks)
            _levels(target.bids, body.bids)
            target.eventType = body.event_type
            target.version = _s(body.version)
            target.lastOrderCreateTime = body.last_order_create_time
        case Kline():
            target.interval = body.interval
            target.windowStart = body.window_start
            target.windowEnd = body.window_end
            target.openingPrice = _s(body.opening_price)
            target.closingPrice = _s(body.closing_price)
            target.highestPrice = _s(body.highest_price)
            target.lowestPrice = _s(body.lowest_price)
            target.volume = _s(body.volume)
            target.amount = _s(body.amount)
    target.SetInParent()


def encode(frame: Frame) -> bytes:
    """The binary WebSocket message of `frame`."""
    wrapper = schema.PushDataV3ApiWrapper(channel=frame.channel)
    if frame.symbol is not None:
        wrapper.symbol = frame.symbol
    if frame.symbol_id is not None:
        wrapper.symbolId = frame.symbol_id
    if frame.create_time is not None:
        wrapper.createTime = frame.create_time
    if frame.send_time is not None:
        wrapper.sendTime = frame.send_time
    _fill_body(wrapper, frame.body)
    return wrapper.SerializeToString(deterministic=True)


# ---- decode --------------------------------------------------------------------------------


def _dec(value: str, field: str, required: bool = False) -> Decimal | None:
    if value == "":
        if required:
            raise FrameDecodeError(f"{field} is empty")
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise FrameDecodeError(f"{field}={value!r} is not a decimal number") from None
    if not number.is_finite():
        raise FrameDecodeError(f"{field}={value!r} is not a finite number")
    return number


def _req(value: str, field: str) -> Decimal:
    number = _dec(value, field, required=True)
    assert number is not None
    return number


def _int(value: str, field: str) -> int | None:
    if value == "":
        return None
    if not value.isdigit():
        raise FrameDecodeError(f"{field}={value!r} is not a whole number")
    return int(value)


def _req_int(value: str, field: str) -> int:
    number = _int(value, field)
    if number is None:
        raise FrameDecodeError(f"{field} is empty")
    return number


def _decode_levels(items: Any, field: str) -> tuple[PriceLevel, ...]:
    return tuple(
        PriceLevel(_req(i.price, f"{field}.price"), _req(i.quantity, f"{field}.quantity"))
        for i in items
    )


def _decode_mini(m: Any) -> MiniTicker:
    values: dict[str, Any] = {"symbol": m.symbol}
    for attr, field in _MINI_FIELDS[1:]:
        values[attr] = _dec(getattr(m, field), field)
    return MiniTicker(**values)


def _decode_body(wrapper: Any, kind: str) -> Body:
    m = getattr(wrapper, kind)
    if kind == "publicMiniTickers":
        return MiniTickers(tuple(_decode_mini(item) for item in m.items))
    if kind == "publicMiniTicker":
        return _decode_mini(m)
    if kind == "publicAggreBookTicker":
        return BookTicker(
            _dec(m.bidPrice, "bidPrice"),
            _dec(m.bidQuantity, "bidQuantity"),
            _dec(m.askPrice, "askPrice"),
            _dec(m.askQuantity, "askQuantity"),
            _int(m.version, "version"),
            m.lastOrderCreateTime,
        )
    if kind == "publicAggreDeals":
        deals = tuple(
            Deal(
                _req(d.price, "deals.price"),
                _req(d.quantity, "deals.quantity"),
                d.tradeType,
                d.time,
                d.tradeId,
            )
            for d in m.deals
        )
        return Deals(deals, m.eventType)
    if kind == "publicAggreDepths":
        return AggreDepth(
            _decode_levels(m.asks, "asks"),
            _decode_levels(m.bids, "bids"),
            m.eventType,
            _req_int(m.fromVersion, "fromVersion"),
            _req_int(m.toVersion, "toVersion"),
            m.lastOrderCreateTime,
        )
    if kind == "publicLimitDepths":
        return LimitDepth(
            _decode_levels(m.asks, "asks"),
            _decode_levels(m.bids, "bids"),
            m.eventType,
            _int(m.version, "version"),
            m.lastOrderCreateTime,
        )
    return Kline(
        m.interval,
        m.windowStart,
        m.windowEnd,
        _req(m.openingPrice, "openingPrice"),
        _req(m.closingPrice, "closingPrice"),
        _req(m.highestPrice, "highestPrice"),
        _req(m.lowestPrice, "lowestPrice"),
        _req(m.volume, "volume"),
        _req(m.amount, "amount"),
    )


def decode(data: bytes) -> Frame:
    """The typed frame of one binary push message; FrameDecodeError when it is not one."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FrameDecodeError(f"expected bytes, got {type(data).__name__} (a JSON text frame?)")
    wrapper = schema.PushDataV3ApiWrapper()
    try:
        wrapper.ParseFromString(bytes(data))
    except DecodeError as exc:
        raise FrameDecodeError(f"not a PushDataV3ApiWrapper ({len(data)} bytes): {exc}") from None
    kind = wrapper.WhichOneof("body")
    if kind is None:
        raise FrameDecodeError(
            f"frame of channel {wrapper.channel!r} carries no body this codec knows "
            "(a private or legacy channel?)"
        )
    return Frame(
        channel=wrapper.channel,
        body=_decode_body(wrapper, kind),
        symbol=wrapper.symbol if wrapper.HasField("symbol") else None,
        symbol_id=wrapper.symbolId if wrapper.HasField("symbolId") else None,
        create_time=wrapper.createTime if wrapper.HasField("createTime") else None,
        send_time=wrapper.sendTime if wrapper.HasField("sendTime") else None,
    )
