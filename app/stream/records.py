"""What the streamer stores per symbol, as typed values and their compact JSON.

Prices and quantities are Decimals (strings in JSON, exact); times are ms since the epoch:
`send_time` is MEXC's sendTime of the frame, `received_at` when the streamer read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.exchange.proto import BookTicker, Deal, Kline, MiniTicker

MINUTE_MS = 60_000


def _s(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _d(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(value)


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class MiniTickerState:
    symbol: str
    price: Decimal | None
    rate: Decimal | None  # change in the UTC+8 day, a fraction
    zoned_rate: Decimal | None
    high: Decimal | None  # rolling 24 h
    low: Decimal | None
    volume: Decimal | None  # quote
    quantity: Decimal | None  # base
    send_time: int
    received_at: int

    @classmethod
    def of(cls, t: MiniTicker, send_time: int, received_at: int) -> MiniTickerState:
        return cls(
            t.symbol,
            t.price,
            t.rate,
            t.zoned_rate,
            t.high,
            t.low,
            t.volume,
            t.quantity,
            send_time,
            received_at,
        )

    def to_json(self) -> str:
        return dumps(
            {
                "p": _s(self.price),
                "r": _s(self.rate),
                "zr": _s(self.zoned_rate),
                "h": _s(self.high),
                "l": _s(self.low),
                "v": _s(self.volume),
                "q": _s(self.quantity),
                "t": self.send_time,
                "rt": self.received_at,
            }
        )

    @classmethod
    def from_json(cls, symbol: str, text: str | bytes) -> MiniTickerState:
        d = json.loads(text)
        return cls(
            symbol,
            _d(d.get("p")),
            _d(d.get("r")),
            _d(d.get("zr")),
            _d(d.get("h")),
            _d(d.get("l")),
            _d(d.get("v")),
            _d(d.get("q")),
            int(d["t"]),
            int(d["rt"]),
        )


@dataclass(frozen=True, slots=True)
class BookState:
    symbol: str
    bid: Decimal | None
    bid_qty: Decimal | None
    ask: Decimal | None
    ask_qty: Decimal | None
    version: int | None
    send_time: int
    received_at: int

    @classmethod
    def of(cls, symbol: str, b: BookTicker, send_time: int, received_at: int) -> BookState:
        return cls(
            symbol,
            b.bid_price,
            b.bid_quantity,
            b.ask_price,
            b.ask_quantity,
            b.version,
            send_time,
            received_at,
        )

    def to_json(self) -> str:
        return dumps(
            {
                "b": _s(self.bid),
                "bq": _s(self.bid_qty),
                "a": _s(self.ask),
                "aq": _s(self.ask_qty),
                "ver": self.version,
                "t": self.send_time,
                "rt": self.received_at,
            }
        )

    @classmethod
    def from_json(cls, symbol: str, text: str | bytes) -> BookState:
        d = json.loads(text)
        return cls(
            symbol,
            _d(d.get("b")),
            _d(d.get("bq")),
            _d(d.get("a")),
            _d(d.get("aq")),
            d.get("ver"),
            int(d["t"]),
            int(d["rt"]),
        )

    @property
    def mid(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class DealState:
    price: Decimal
    quantity: Decimal
    side: str  # the taker's: "buy" or "sell"
    time: int
    trade_id: str

    @classmethod
    def of(cls, d: Deal) -> DealState:
        return cls(d.price, d.quantity, "buy" if d.is_buy else "sell", d.time, d.trade_id)

    def to_json(self) -> str:
        return dumps(
            {
                "p": _s(self.price),
                "q": _s(self.quantity),
                "s": self.side,
                "t": self.time,
                "id": self.trade_id,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> DealState:
        d = json.loads(text)
        return cls(Decimal(d["p"]), Decimal(d["q"]), d["s"], int(d["t"]), str(d["id"]))


@dataclass(frozen=True, slots=True)
class KlineState:
    """A 1m candle: open_time/close_time in ms (close = open + 60 s, MEXC's convention).

    `updated_at` is the market moment it shows (the sendTime of its last frame, or of the
    last deal folded into it). A closed candle is `complete` when the streamer saw its
    minute to the end on one connection (its last frame plus every deal after it)."""

    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal  # base
    quote_volume: Decimal
    updated_at: int
    closed: bool = False
    complete: bool = True

    @classmethod
    def of(cls, k: Kline, send_time: int) -> KlineState:
        return cls(
            k.window_start * 1000,
            k.window_end * 1000,
            k.opening_price,
            k.highest_price,
            k.lowest_price,
            k.closing_price,
            k.volume,
            k.amount,
            send_time,
        )

    def with_deals(self, deals: list[DealState]) -> KlineState:
        """The candle with the trades after its last frame (those inside its minute)."""
        inside = [d for d in deals if self.updated_at < d.time < self.close_time]
        if not inside:
            return self
        return replace(
            self,
            high=max(self.high, *(d.price for d in inside)),
            low=min(self.low, *(d.price for d in inside)),
            close=inside[-1].price,
            volume=self.volume + sum((d.quantity for d in inside), Decimal(0)),
            quote_volume=self.quote_volume
            + sum((d.price * d.quantity for d in inside), Decimal(0)),
            updated_at=inside[-1].time,
        )

    def to_json(self) -> str:
        return dumps(
            {
                "ot": self.open_time,
                "ct": self.close_time,
                "o": _s(self.open),
                "h": _s(self.high),
                "l": _s(self.low),
                "c": _s(self.close),
                "v": _s(self.volume),
                "qv": _s(self.quote_volume),
                "t": self.updated_at,
                "x": self.closed,
                "ok": self.complete,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> KlineState:
        d = json.loads(text)
        return cls(
            int(d["ot"]),
            int(d["ct"]),
            Decimal(d["o"]),
            Decimal(d["h"]),
            Decimal(d["l"]),
            Decimal(d["c"]),
            Decimal(d["v"]),
            Decimal(d["qv"]),
            int(d["t"]),
            bool(d.get("x", False)),
            bool(d.get("ok", True)),
        )
