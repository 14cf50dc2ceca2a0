"""The market-session file (`cdb export` writes it, `cdb replay` reads it), checked line by line.

Every line must be one JSON object of a known type with the fields `cdb export` writes, and
the data must pass the same checks the live market-data stage applies (positive finite
prices, ordered uncrossed books, candles whose high and low bound open and close...): what
the live path would reject, replay rejects too. Anything else raises ReplayError naming the
line and the field, so a hostile or damaged file stops with one clear message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from app.domain import market as dm
from app.domain.market import KLINE_INTERVALS
from app.domain.validation import check_book, kline_faults, ticker_faults
from app.models.runs import RUN_STATES

FORMAT = "cdb-market-session/1"
MAX_LINE = 64 * 1024 * 1024  # characters: one run of a large universe is a few MB

Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,30}$")]
Text = Annotated[str, StringConstraints(max_length=4000)]
DECIMAL = re.compile(r"-?[0-9]{1,40}(\.[0-9]{1,40})?")


def _decimal_text(value: Any) -> str:
    """Exported decimals are plain ("f") strings: exponents and absurd lengths are refused."""
    if not isinstance(value, str) or not DECIMAL.fullmatch(value):
        raise ValueError("not a decimal number written like 12.5")
    return value


def _optional_decimal_text(value: Any) -> str | None:
    return None if value is None else _decimal_text(value)


def _to_decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _iso_text(value: Any) -> Any:
    """Times are ISO 8601 strings with an offset, as `cdb export` writes them."""
    if not isinstance(value, str) or not ISO_TIME.fullmatch(value):
        raise ValueError("not an ISO 8601 time such as 2026-01-01T00:00:00+00:00")
    return value


ISO_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
DecimalText = Annotated[str, BeforeValidator(_decimal_text)]
Dec = Annotated[str, BeforeValidator(_decimal_text), AfterValidator(_to_decimal)]
OptDec = Annotated[str | None, BeforeValidator(_optional_decimal_text), AfterValidator(_to_decimal)]
Count = Annotated[int, Field(ge=0, le=10**9)]


class ReplayError(ValueError):
    """The file is not a market session this version can replay."""


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=False, frozen=True)


class Header(_Row):
    type: Literal["header"]
    format: Literal["cdb-market-session/1"]
    interval: Literal[tuple(KLINE_INTERVALS)]  # type: ignore[valid-type]
    lookback_minutes: Annotated[int, Field(ge=1, le=1440)]


class MarketRow(_Row):
    symbol: Symbol
    base_asset: Annotated[str, StringConstraints(max_length=16)]
    quote_asset: Annotated[str, StringConstraints(max_length=16)]
    status: Annotated[str, StringConstraints(max_length=8)]
    is_spot_trading_allowed: bool
    base_asset_precision: Annotated[int, Field(ge=0, le=30)]
    quote_asset_precision: Annotated[int, Field(ge=0, le=30)]
    min_notional: OptDec = None
    min_qty: OptDec = None
    maker_commission: OptDec = None
    taker_commission: OptDec = None
    max_quote_amount: OptDec = None
    full_name: Annotated[str, StringConstraints(max_length=128)] | None = None
    updated_at: Timestamp


class Markets(_Row):
    type: Literal["markets"]
    markets: Annotated[list[MarketRow], Field(max_length=100_000)]


class RunRow(_Row):
    id: Annotated[int, Field(ge=1, le=2**62)]
    run_key: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    trigger: Annotated[str, StringConstraints(max_length=16)]
    status: Literal[tuple(s for s in RUN_STATES if s != "running")]  # type: ignore[valid-type]
    started_at: Timestamp
    finished_at: Timestamp | None = None
    attempts: Count = 1
    parameters: dict[str, Any] = {}
    tickers_received: Count = 0
    universe_size: Count = 0
    screened_symbols: list[Symbol] = []
    stored_symbols: list[Symbol] = []
    rejections: list[dict[str, Any]] = []
    retries: list[dict[str, Any]] = []
    error: Text | None = None


class TickerRow(_Row):
    run_id: int
    symbol: Symbol
    last_price: Dec
    price_change_pct: OptDec = None
    open_price: OptDec = None
    high_price: OptDec = None
    low_price: OptDec = None
    bid_price: OptDec = None
    bid_qty: OptDec = None
    ask_price: OptDec = None
    ask_qty: OptDec = None
    volume: OptDec = None
    quote_volume: OptDec = None
    open_time: Timestamp | None = None
    close_time: Timestamp
    screened: bool = False


class BookRow(_Row):
    run_id: int
    symbol: Symbol
    last_update_id: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    best_bid: Dec
    best_ask: Dec
    bids: Annotated[list[tuple[DecimalText, DecimalText]], Field(min_length=1, max_length=5000)]
    asks: Annotated[list[tuple[DecimalText, DecimalText]], Field(min_length=1, max_length=5000)]
    fetched_at: Timestamp


class KlineRow(_Row):
    symbol: Symbol
    interval: Literal[tuple(KLINE_INTERVALS)]  # type: ignore[valid-type]
    open_time: Timestamp
    open: Dec
    high: Dec
    low: Dec
    close: Dec
    volume: Dec
    close_time: Timestamp
    quote_volume: OptDec = None


class Run(_Row):
    type: Literal["run"]
    run: RunRow
    tickers: Annotated[list[TickerRow], Field(max_length=100_000)]
    books: Annotated[list[BookRow], Field(max_length=100_000)]
    klines: Annotated[list[KlineRow], Field(max_length=1_000_000)]


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(line)"
    shown = repr(first.get("input"))
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{where}={shown}: {first['msg'].removeprefix('Value error, ')}"


def records(lines: Iterator[str]) -> Iterator[tuple[int, Header | Markets | Run]]:
    """(line number, record) for every non-empty line; the first one must be the header."""
    seen_header = False
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE:
            raise ReplayError(f"line {number}: longer than {MAX_LINE} characters")
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            message = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deep"
            raise ReplayError(f"line {number}: not JSON ({message})") from None
        if not isinstance(data, dict):
            raise ReplayError(
                f"line {number}: a {type(data).__name__}, not a JSON object; "
                "not a session exported by `cdb export`"
            )
        kind = data.get("type")
        model = {"header": Header, "markets": Markets, "run": Run}.get(kind)  # type: ignore[arg-type]
        if model is None:
            raise ReplayError(f"line {number}: unknown record type {kind!r}")
        if not seen_header and model is not Header:
            raise ReplayError(f"not a {FORMAT} file (export one with `cdb export`)")
        if seen_header and model is Header:
            raise ReplayError(f"line {number}: a second header")
        try:
            record = model.model_validate(data)
        except ValidationError as exc:
            if model is Header:
                raise ReplayError(
                    f"not a {FORMAT} file (export one with `cdb export`): {_problem(exc)}"
                ) from None
            raise ReplayError(f"line {number}: {kind} record: {_problem(exc)}") from None
        except RecursionError:
            raise ReplayError(f"line {number}: nested too deep") from None
        if isinstance(record, Run):
            _check_run(number, record)
        seen_header = True
        yield number, record
    if not seen_header:
        raise ReplayError(f"empty: not a {FORMAT} file (export one with `cdb export`)")


def _check_run(number: int, record: Run) -> None:
    """The live path's checks: a file with data the market-data stage would not have stored
    is refused."""
    run_id = record.run.id
    for row in (*record.tickers, *record.books):
        if row.run_id != run_id:
            raise ReplayError(
                f"line {number}: {row.symbol}'s data belongs to run {row.run_id}, not {run_id}"
            )
    for t in record.tickers:
        ticker = dm.Ticker24h(
            symbol=t.symbol,
            last_price=t.last_price,
            price_change=None,
            price_change_fraction=None,
            prev_close_price=None,
            open_price=t.open_price,
            high_price=t.high_price,
            low_price=t.low_price,
            bid_price=t.bid_price,
            bid_qty=t.bid_qty,
            ask_price=t.ask_price,
            ask_qty=t.ask_qty,
            volume=t.volume,
            quote_volume=t.quote_volume,
            open_time=t.open_time,
            close_time=t.close_time,
        )
        _refuse(number, f"ticker {t.symbol}", ticker_faults(ticker))
    for b in record.books:
        book = dm.OrderBook(
            symbol=b.symbol,
            bids=tuple((Decimal(p), Decimal(q)) for p, q in b.bids),
            asks=tuple((Decimal(p), Decimal(q)) for p, q in b.asks),
            last_update_id=b.last_update_id,
            fetched_at=b.fetched_at,
        )
        reasons = check_book(book)
        if not reasons and (book.best_bid != b.best_bid or book.best_ask != b.best_ask):
            reasons = ["best bid/ask disagree with the levels"]
        _refuse(number, f"book {b.symbol}", reasons)
    by_symbol: dict[tuple[str, str], list[dm.Kline]] = {}
    for k in record.klines:
        by_symbol.setdefault((k.symbol, k.interval), []).append(
            dm.Kline(
                k.open_time, k.open, k.high, k.low, k.close, k.volume, k.close_time, k.quote_volume
            )
        )
    for (symbol, _), klines in by_symbol.items():
        klines.sort(key=lambda kline: kline.open_time)
        _refuse(number, f"klines {symbol}", kline_faults(klines))


def _refuse(number: int, what: str, reasons: list[str]) -> None:
    if reasons:
        raise ReplayError(
            f"line {number}: {what}: {'; '.join(reasons[:3])} (the live pipeline rejects this)"
        )


def as_row(record: _Row, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The model's fields as a database row (Decimals and datetimes kept as they are)."""
    row = {}
    for name in type(record).model_fields:
        if name in skip or name == "type":
            continue
        value = getattr(record, name)
        row[name] = value
    return row


def kline_row(k: KlineRow) -> dict[str, Any]:
    return as_row(k)


def book_row(b: BookRow) -> dict[str, Any]:
    row = as_row(b)
    row["bids"] = [list(level) for level in b.bids]
    row["asks"] = [list(level) for level in b.asks]
    return row


def moment(run: RunRow) -> datetime:
    return run.finished_at or run.started_at
