"""MEXC's public spot channel names, and what the server's control answers say.

    spot@public.miniTickers.v3.api.pb@UTC+8                    every symbol, every few seconds
    spot@public.aggre.bookTicker.v3.api.pb@100ms@<S>           best bid/ask, aggregated
    spot@public.aggre.deals.v3.api.pb@100ms@<S>                trades, aggregated
    spot@public.kline.v3.api.pb@<S>@Min1                       the current 1m candle

A subscription answer is {"id":0,"code":0,"msg":...}: the accepted channels joined by commas,
or "Not Subscribed successfully! [<refused>].  Reason\uff1a Blocked! " (a full-width colon), or
both ("Subscribed successful! [<accepted>]. Not Subscribed successfully! [...] ..."). A PING is
answered with "msg":"PONG".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TIME_ZONE = "UTC+8"
MINI_TICKERS = f"spot@public.miniTickers.v3.api.pb@{TIME_ZONE}"
# What is subscribed per watched symbol (one connection carries all three of a symbol).
SYMBOL_KINDS = ("bookTicker", "deals", "kline")
KINDS = ("miniTickers", *SYMBOL_KINDS)

_REFUSED = re.compile(r"Not Subscribed successfully! \[([^\]]*)\]")
_ACCEPTED = re.compile(r"Subscribed successful! \[([^\]]*)\]")


def book_ticker(symbol: str) -> str:
    return f"spot@public.aggre.bookTicker.v3.api.pb@100ms@{symbol}"


def deals(symbol: str) -> str:
    return f"spot@public.aggre.deals.v3.api.pb@100ms@{symbol}"


def kline(symbol: str) -> str:
    return f"spot@public.kline.v3.api.pb@{symbol}@Min1"


def symbol_channels(symbol: str) -> tuple[str, ...]:
    """The channels of one watched symbol."""
    return (book_ticker(symbol), deals(symbol), kline(symbol))


@dataclass(frozen=True, slots=True)
class ChannelName:
    kind: str  # miniTickers, bookTicker, deals, kline, or "other"
    symbol: str | None = None


def parse(name: str) -> ChannelName:
    """What a channel name (ours, or one a frame carries) is about."""
    parts = name.split("@")
    topic = parts[1] if len(parts) > 1 else ""
    if topic.startswith("public.miniTickers."):
        return ChannelName("miniTickers")
    if topic.startswith("public.aggre.bookTicker.") and len(parts) == 4:
        return ChannelName("bookTicker", parts[3])
    if topic.startswith("public.aggre.deals.") and len(parts) == 4:
        return ChannelName("deals", parts[3])
    if topic.startswith("public.kline.") and len(parts) == 4:
        return ChannelName("kline", parts[2])
    return ChannelName("other")


@dataclass(frozen=True, slots=True)
class Answer:
    """A control answer: PONG, or which channels a (un)subscription accepted and refused."""

    pong: bool = False
    accepted: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    message: str = ""
    code: int = 0


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_answer(answer: dict[str, object]) -> Answer:
    """Read {"id":..,"code":..,"msg":..}. A message that is neither PONG nor a channel list
    (an error text) comes back with no channels and `message` set."""
    message = answer.get("msg")
    code = answer.get("code", 0)
    code = code if isinstance(code, int) else -1
    text = message if isinstance(message, str) else ""
    if text == "PONG":
        return Answer(pong=True, message=text, code=code)
    refused = _REFUSED.search(text)
    if refused is not None:
        accepted = _ACCEPTED.search(text)
        return Answer(
            accepted=_names(accepted.group(1)) if accepted else (),
            refused=_names(refused.group(1)),
            message=text,
            code=code,
        )
    names = _names(text)
    if names and all(name.startswith("spot@") for name in names):
        return Answer(accepted=names, message=text, code=code)
    return Answer(message=text, code=code)
