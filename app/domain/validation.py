"""Checks that keep bad market data out of the database. Each returns reasons, empty if good."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from app.domain.market import KLINE_INTERVALS, Kline, OrderBook, Ticker24h

# MEXC's clock and ours differ a little; a timestamp this far ahead is still "now".
CLOCK_SKEW = timedelta(seconds=5)
# What a MEXC spot symbol looks like (the event schema's pattern): anything else is refused
# where it enters, so one hostile name can never fail a whole run downstream.
SYMBOL = re.compile(r"[A-Z0-9]{2,30}")


def symbol_fault(symbol: object) -> str | None:
    if not isinstance(symbol, str) or not SYMBOL.fullmatch(symbol):
        shown = repr(symbol)
        return f"symbol {shown[:40]} is not a MEXC spot symbol (A-Z, 0-9, 2 to 30 characters)"
    return None


def _bad_price(name: str, value: Decimal | None, *, required: bool = True) -> str | None:
    if value is None:
        return f"{name} missing" if required else None
    if not value.is_finite():
        return f"{name} is not finite ({value})"
    if value <= 0:
        return f"{name} is not positive ({value})"
    return None


def _bad_amount(name: str, value: Decimal | None) -> str | None:
    if value is not None and (not value.is_finite() or value < 0):
        return f"{name} is negative or not finite ({value})"
    return None


def check_ticker(ticker: Ticker24h, now: datetime, stale_after: timedelta) -> list[str]:
    reasons = ticker_faults(ticker)
    if ticker.close_time is None:
        reasons.append("closeTime missing")
    else:
        reasons.extend(_check_time("closeTime", ticker.close_time, now, stale_after))
    return reasons


def ticker_faults(ticker: Ticker24h) -> list[str]:
    """What is wrong with a ticker's values, whatever the time (the clock-free checks)."""
    if fault := symbol_fault(ticker.symbol):
        return [fault]
    reasons = [
        reason
        for reason in (
            _bad_price("lastPrice", ticker.last_price),
            _bad_price("bidPrice", ticker.bid_price, required=False),
            _bad_price("askPrice", ticker.ask_price, required=False),
            _bad_price("highPrice", ticker.high_price, required=False),
            _bad_price("lowPrice", ticker.low_price, required=False),
            _bad_amount("volume", ticker.volume),
            _bad_amount("quoteVolume", ticker.quote_volume),
        )
        if reason
    ]
    if ticker.bid_price and ticker.ask_price and ticker.bid_price > ticker.ask_price:
        reasons.append(f"crossed quote: bid {ticker.bid_price} above ask {ticker.ask_price}")
    return reasons


def check_klines(
    klines: Sequence[Kline], interval: str, now: datetime, stale_after: timedelta
) -> list[str]:
    if not klines:
        return ["no klines"]
    reasons: list[str] = []
    previous: datetime | None = None
    for kline in klines:
        reasons.extend(_kline_faults(kline, previous, now))
        previous = kline.open_time
        if len(reasons) >= 5:
            break
    # The newest candle must be the current one (or the one before, right at a boundary).
    newest = klines[-1].open_time
    current_start = now - timedelta(seconds=KLINE_INTERVALS[interval])
    if newest < current_start - stale_after:
        age = int((now - newest).total_seconds())
        reasons.append(f"newest kline opened {age}s ago: stale (timeout {stale_after.seconds}s)")
    return reasons


def kline_faults(klines: Sequence[Kline]) -> list[str]:
    """What is wrong with a series of candles' values and order, whatever the time."""
    reasons: list[str] = []
    previous: datetime | None = None
    for kline in klines:
        reasons.extend(_kline_faults(kline, previous, None))
        previous = kline.open_time
        if len(reasons) >= 5:
            break
    return reasons


def _kline_faults(kline: Kline, previous: datetime | None, now: datetime | None) -> list[str]:
    prices = (kline.open, kline.high, kline.low, kline.close)
    sound = (
        all(p is not None and p.is_finite() and p > 0 for p in prices)
        and kline.low <= min(kline.open, kline.close) <= max(kline.open, kline.close) <= kline.high
        and (kline.volume is None or (kline.volume.is_finite() and kline.volume >= 0))
        and (previous is None or kline.open_time > previous)
        and (now is None or kline.open_time <= now + CLOCK_SKEW)
    )
    if sound:  # the usual case, checked without building the labels of the reasons
        return []
    label = f"kline {kline.open_time.isoformat()}"
    faults = [
        reason
        for name in ("open", "high", "low", "close")
        if (reason := _bad_price(f"{label} {name}", getattr(kline, name)))
    ]
    if not faults and not (
        kline.low <= min(kline.open, kline.close) <= max(kline.open, kline.close) <= kline.high
    ):
        faults.append(f"{label}: high/low do not bound open/close")
    if reason := _bad_amount(f"{label} volume", kline.volume):
        faults.append(reason)
    if previous is not None and kline.open_time <= previous:
        faults.append(f"{label}: not after the previous kline")
    if now is not None and kline.open_time > now + CLOCK_SKEW:
        faults.append(f"{label}: opens in the future")
    return faults


def check_book(book: OrderBook) -> list[str]:
    if not book.bids or not book.asks:
        return ["empty book side"]
    reasons: list[str] = []
    for side, levels in (("bid", book.bids), ("ask", book.asks)):
        for price, qty in levels:
            reason = _bad_price(f"{side} price", price) or (
                f"{side} qty not positive ({qty})" if not (qty.is_finite() and qty > 0) else None
            )
            if reason:
                reasons.append(reason)
                break
    if reasons:
        return reasons
    if any(a[0] <= b[0] for a, b in zip(book.bids, book.bids[1:], strict=False)):
        reasons.append("bids not in descending price order")
    if any(b[0] <= a[0] for a, b in zip(book.asks, book.asks[1:], strict=False)):
        reasons.append("asks not in ascending price order")
    if book.best_bid >= book.best_ask:  # type: ignore[operator]
        reasons.append(f"crossed book: best bid {book.best_bid} >= best ask {book.best_ask}")
    return reasons


def _check_time(name: str, value: datetime, now: datetime, stale_after: timedelta) -> list[str]:
    if value > now + CLOCK_SKEW:
        return [f"{name} {value.isoformat()} is in the future"]
    if now - value > stale_after:
        age = int((now - value).total_seconds())
        return [f"{name} is {age}s old: stale (timeout {int(stale_after.total_seconds())}s)"]
    return []
