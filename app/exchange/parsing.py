"""Turn MEXC spot v3 JSON into domain objects. Pure functions, no I/O.

JSON is expected to be decoded with ``parse_float=Decimal`` so that numbers sent as JSON
numbers arrive as ``int`` or ``Decimal``; MEXC mostly sends prices as strings anyway.
Every documented variant is accepted: numbers as strings or JSON numbers, ``""`` and
``null`` for missing values, times and ids as numbers or numeric strings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from app.domain.market import BookTicker, Kline, Market, OrderBook, Ticker24h

__all__ = [
    "ParseError",
    "millis_to_utc",
    "parse_book_ticker",
    "parse_book_tickers",
    "parse_depth",
    "parse_exchange_info",
    "parse_kline",
    "parse_klines",
    "parse_market",
    "parse_server_time",
    "parse_ticker",
    "parse_tickers",
    "to_decimal",
    "to_millis",
]

KLINE_FIELDS = 8

# Plain decimal notation only: no NaN/Infinity, no "1_000", no hex.

# No price, quantity or timestamp is anywhere near 10**100; bigger exponents are garbage.
_MAX_ADJUSTED_EXPONENT = 100

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Legacy status words seen in older MEXC docs and responses, mapped to "1"/"2"/"3".
_STATUS_WORDS = {
    "ENABLED": "1",
    "ENABLE": "1",
    "ONLINE": "1",
    "TRADING": "1",
    "OPEN": "1",
    "PAUSED": "2",
    "PAUSE": "2",
    "HALT": "2",
    "HALTED": "2",
    "BREAK": "2",
    "SUSPENDED": "2",
    "OFFLINE": "3",
    "DISABLED": "3",
    "DISABLE": "3",
    "CLOSED": "3",
    "CLOSE": "3",
    "DELISTED": "3",
    "END_OF_DAY": "3",
}


class ParseError(ValueError):
    """A field in a MEXC answer could not be understood."""

    def __init__(self, field: str, value: object, reason: str = "not understood") -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {reason} (got {_show(value)})")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- scalars ---------------------------------------------------------------------------


def to_decimal(value: object, field: str = "value") -> Decimal | None:
    """A price/quantity as an exact Decimal; ``""`` and ``None`` mean "absent"."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ParseError(field, value, "expected a number, not a boolean")
    if isinstance(value, Decimal):
        return _checked(value, field, value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ParseError(field, value, "not a finite number")
        return Decimal(str(value))
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        # A decimal number ([+-]digits[.digits][e[+-]digits]) is what Decimal() reads, less
        # digits of other scripts, "1_000" and the words NaN and Infinity (not finite): those
        # are ruled out around it rather than by a regex per value (an all-tickers answer has
        # 30,000 of these).
        if not text.isascii() or "_" in text:
            raise ParseError(field, value, "not a decimal number")
        try:
            number = Decimal(text)
        except InvalidOperation as exc:
            raise ParseError(field, value, "not a decimal number") from exc
        if not number.is_finite():
            raise ParseError(field, value, "not a decimal number")
        return _checked(number, field, value)
    raise ParseError(
        field, value, f"expected a number or numeric string, not {type(value).__name__}"
    )


def _checked(number: Decimal, field: str, raw: object) -> Decimal:
    if not number.is_finite():
        raise ParseError(field, raw, "not a finite number")
    if abs(number.adjusted()) > _MAX_ADJUSTED_EXPONENT:
        raise ParseError(field, raw, "number out of range")
    return number


def _to_int(value: object, field: str) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = to_decimal(value, field)
    if number is None:
        return None
    if number != number.to_integral_value():
        raise ParseError(field, value, "expected a whole number")
    return int(number)


def to_millis(value: object, field: str = "time") -> int | None:
    """Epoch milliseconds from an int or numeric string (``"1710328232149"``)."""
    millis = _to_int(value, field)
    if millis is not None and millis < 0:
        raise ParseError(field, value, "negative timestamp")
    return millis


def millis_to_utc(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime, exact to the millisecond."""
    return _EPOCH + timedelta(milliseconds=ms)


def _time(value: object, field: str) -> datetime | None:
    millis = to_millis(value, field)
    if millis is None:
        return None
    try:
        return millis_to_utc(millis)
    except OverflowError as exc:
        raise ParseError(field, value, "timestamp out of range") from exc


def _required_time(value: object, field: str) -> datetime:
    moment = _time(value, field)
    if moment is None:
        raise ParseError(field, value, "missing timestamp")
    return moment


def _required_decimal(value: object, field: str) -> Decimal:
    number = to_decimal(value, field)
    if number is None:
        raise ParseError(field, value, "missing number")
    return number


def _mapping(payload: object, what: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise ParseError(what, payload, "expected a JSON object")
    return payload


def _list(payload: object, what: str) -> list[Any]:
    if not isinstance(payload, list):
        raise ParseError(what, payload, "expected a JSON array")
    return payload


def _symbol(d: Mapping[str, Any], field: str = "symbol") -> str:
    """A name as MEXC sent it: not trimmed, so " BTCUSDT" can never pass for BTCUSDT (the
    validation downstream refuses what is not a plain symbol)."""
    value = d.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ParseError(field, value, "missing or not a string")
    return value


class Entries(list):
    """The entries of a list answer that parsed, with the ones that did not beside them
    (`rejected`: (symbol or "#index", reason)): one bad entry never fails the others."""

    def __init__(self, parsed: list[Any], rejected: list[tuple[str, str]]) -> None:
        super().__init__(parsed)
        self.rejected = rejected


def _each(entries: list[Any], parse: Callable[[Any], Any]) -> Entries:
    """Parse each entry of a per-symbol list; a symbol answered more than once is refused
    whole (which of its entries holds the true price cannot be told)."""
    parsed, rejected = [], []
    for index, entry in enumerate(entries):
        try:
            parsed.append(parse(entry))
        except ParseError as exc:
            name = entry.get("symbol") if isinstance(entry, Mapping) else None
            label = name if isinstance(name, str) and name else f"#{index}"
            rejected.append((label[:40], str(exc)))
    times = Counter(item.symbol for item in parsed)
    if any(count > 1 for count in times.values()):
        rejected += [
            (symbol, f"answered {count} times: every entry refused")
            for symbol, count in times.items()
            if count > 1
        ]
        parsed = [item for item in parsed if times[item.symbol] == 1]
    return Entries(parsed, rejected)


def _optional_str(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _bool(value: object, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ParseError(field, value, "expected true or false")


def _precision(value: object, field: str) -> int:
    digits = _to_int(value, field)
    if digits is None or digits < 0:
        raise ParseError(field, value, "expected a non-negative number of decimal places")
    return digits


# --- exchangeInfo ----------------------------------------------------------------------


def _status(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ParseError("status", value, "missing or not a string")
    text = value.strip()
    # Unknown words are kept verbatim: Market.is_tradable then treats them as not tradable.
    return _STATUS_WORDS.get(text.upper(), text)


def parse_market(d: object) -> Market:
    """One entry of exchangeInfo ``symbols``."""
    d = _mapping(d, "exchangeInfo symbol")
    return Market(
        symbol=_symbol(d),
        base_asset=_symbol(d, "baseAsset"),
        quote_asset=_symbol(d, "quoteAsset"),
        status=_status(d.get("status")),
        is_spot_trading_allowed=_bool(d.get("isSpotTradingAllowed"), "isSpotTradingAllowed"),
        base_asset_precision=_precision(d.get("baseAssetPrecision"), "baseAssetPrecision"),
        quote_asset_precision=_precision(
            d.get("quoteAssetPrecision", d.get("quotePrecision")), "quoteAssetPrecision"
        ),
        min_notional=to_decimal(d.get("quoteAmountPrecision"), "quoteAmountPrecision"),
        min_qty=to_decimal(d.get("baseSizePrecision"), "baseSizePrecision"),
        maker_commission=to_decimal(d.get("makerCommission"), "makerCommission"),
        taker_commission=to_decimal(d.get("takerCommission"), "takerCommission"),
        max_quote_amount=to_decimal(d.get("maxQuoteAmount"), "maxQuoteAmount"),
        full_name=_optional_str(d.get("fullName")),
    )


def parse_exchange_info(payload: object) -> list[Market]:
    """All markets of an exchangeInfo answer."""
    info = _mapping(payload, "exchangeInfo")
    if "symbols" not in info:
        raise ParseError("exchangeInfo.symbols", info, "missing")
    symbols = info["symbols"]
    if symbols is None:
        return []
    return _each(_list(symbols, "exchangeInfo.symbols"), parse_market)


def parse_server_time(payload: object) -> datetime:
    return _required_time(_mapping(payload, "time").get("serverTime"), "serverTime")


# --- tickers ---------------------------------------------------------------------------


def parse_ticker(d: object) -> Ticker24h:
    """One 24h ticker; every field except ``symbol`` may be ``""`` or ``null``."""
    d = _mapping(d, "ticker")

    def num(key: str) -> Decimal | None:
        return to_decimal(d.get(key), key)

    return Ticker24h(
        symbol=_symbol(d),
        last_price=num("lastPrice"),
        price_change=num("priceChange"),
        price_change_fraction=num("priceChangePercent"),
        prev_close_price=num("prevClosePrice"),
        open_price=num("openPrice"),
        high_price=num("highPrice"),
        low_price=num("lowPrice"),
        bid_price=num("bidPrice"),
        bid_qty=num("bidQty"),
        ask_price=num("askPrice"),
        ask_qty=num("askQty"),
        volume=num("volume"),
        quote_volume=num("quoteVolume"),
        open_time=_time(d.get("openTime"), "openTime"),
        close_time=_time(d.get("closeTime"), "closeTime"),
    )


def parse_tickers(payload: object) -> list[Ticker24h]:
    """A 24h ticker answer: an object (one symbol) or an array (all symbols)."""
    if isinstance(payload, Mapping):
        return [parse_ticker(payload)]
    return _each(_list(payload, "tickers"), parse_ticker)


def parse_book_ticker(d: object) -> BookTicker:
    d = _mapping(d, "bookTicker")
    return BookTicker(
        symbol=_symbol(d),
        bid_price=to_decimal(d.get("bidPrice"), "bidPrice"),
        bid_qty=to_decimal(d.get("bidQty"), "bidQty"),
        ask_price=to_decimal(d.get("askPrice"), "askPrice"),
        ask_qty=to_decimal(d.get("askQty"), "askQty"),
    )


def parse_book_tickers(payload: object) -> list[BookTicker]:
    """A bookTicker answer: an object (one symbol) or an array (all symbols)."""
    if isinstance(payload, Mapping):
        return [parse_book_ticker(payload)]
    return _each(_list(payload, "bookTickers"), parse_book_ticker)


# --- klines ----------------------------------------------------------------------------


def parse_kline(row: object) -> Kline:
    """MEXC's 8-field row ``[openTime, open, high, low, close, volume, closeTime, quoteVolume]``.

    Longer rows (Binance-style 12 fields) are tolerated: only the first 8 are read.
    """
    if not isinstance(row, Sequence) or isinstance(row, str | bytes):
        raise ParseError("kline", row, "expected an array")
    if len(row) < KLINE_FIELDS:
        raise ParseError("kline", row, f"expected {KLINE_FIELDS} fields, got {len(row)}")
    open_time, open_, high, low, close, volume, close_time, quote_volume = row[:KLINE_FIELDS]
    return Kline(
        open_time=_required_time(open_time, "kline.openTime"),
        open=_required_decimal(open_, "kline.open"),
        high=_required_decimal(high, "kline.high"),
        low=_required_decimal(low, "kline.low"),
        close=_required_decimal(close, "kline.close"),
        volume=_required_decimal(volume, "kline.volume"),
        close_time=_required_time(close_time, "kline.closeTime"),
        quote_volume=to_decimal(quote_volume, "kline.quoteAssetVolume"),
    )


def parse_klines(payload: object) -> list[Kline]:
    return [parse_kline(row) for row in _list(payload, "klines")]


# --- depth -----------------------------------------------------------------------------


def _levels(payload: Mapping[str, Any], side: str) -> list[tuple[Decimal, Decimal]]:
    if side not in payload:
        raise ParseError(f"depth.{side}", payload, "missing")
    raw = payload[side]
    if raw is None:
        return []
    levels = []
    for level in _list(raw, f"depth.{side}"):
        if not isinstance(level, Sequence) or isinstance(level, str | bytes) or len(level) < 2:
            raise ParseError(f"depth.{side}", level, "expected [price, qty]")
        levels.append(
            (
                _required_decimal(level[0], f"depth.{side}.price"),
                _required_decimal(level[1], f"depth.{side}.qty"),
            )
        )
    return levels


def parse_depth(symbol: str, payload: object, fetched_at: datetime | None = None) -> OrderBook:
    """A depth snapshot; bids are returned best (highest) first, asks lowest first."""
    book = _mapping(payload, "depth")
    bids = sorted(_levels(book, "bids"), key=lambda level: level[0], reverse=True)
    asks = sorted(_levels(book, "asks"), key=lambda level: level[0])
    return OrderBook(
        symbol=symbol,
        last_update_id=_to_int(book.get("lastUpdateId"), "lastUpdateId"),
        bids=tuple(bids),
        asks=tuple(asks),
        fetched_at=fetched_at,
    )
