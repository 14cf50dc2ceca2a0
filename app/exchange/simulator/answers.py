"""MEXC spot v3 JSON shapes, built from the model's exact integers.

Prices are ticks (10**-quotePrecision), quantities units (10**-baseAssetPrecision) and quote
volumes ticks x units, so every string is an exact decimal: an aggregate of candles is, to the
last digit, the sum of its parts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.exchange.simulator.book import Top
from app.exchange.simulator.candles import Agg
from app.exchange.simulator.tape import Trade
from app.exchange.simulator.universe import SymbolSpec

_PCT_QUANTUM = Decimal("0.0001")


class SimulatorError(ValueError):
    """A request the simulated exchange rejects; `code` and `msg` are MEXC's."""

    code = -1121
    msg = "Invalid request."

    def body(self) -> dict[str, Any]:
        return {"msg": self.msg, "code": self.code, "_extend": None}


class InvalidSymbolError(SimulatorError):
    msg = "Invalid symbol."


class InvalidIntervalError(SimulatorError):
    msg = "Invalid interval."


def units_str(units: int, prec: int) -> str:
    """Exact decimal string of units * 10**-prec."""
    if prec <= 0:
        return str(units)
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(prec + 1, "0")
    return f"{sign}{digits[:-prec]}.{digits[-prec:]}"


def dec_str(d: Decimal) -> str:
    s = format(d, "f")
    return s[1:] if s.startswith("-") and d == 0 else s


def change_fraction(last: int, reference: int) -> str:
    """(last - reference) / reference, 4 decimals, never "-0.0000"."""
    if reference <= 0:
        return "0.0000"
    return dec_str((Decimal(last - reference) / Decimal(reference)).quantize(_PCT_QUANTUM))


def symbol_info(spec: SymbolSpec) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "status": spec.status,
        "baseAsset": spec.base_asset,
        "baseAssetPrecision": spec.base_prec,
        "quoteAsset": spec.quote_asset,
        "quotePrecision": spec.quote_prec,
        "quoteAssetPrecision": spec.quote_prec,
        "baseCommissionPrecision": spec.base_prec,
        "quoteCommissionPrecision": spec.quote_prec,
        "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"],
        "isSpotTradingAllowed": spec.spot_allowed,
        "isMarginTradingAllowed": False,
        "quoteAmountPrecision": spec.min_notional,
        "baseSizePrecision": units_str(1, spec.base_prec),
        "permissions": ["SPOT"],
        "filters": [],
        "maxQuoteAmount": spec.max_quote_amount,
        "makerCommission": spec.maker_commission,
        "takerCommission": spec.taker_commission,
        "quoteAmountPrecisionMarket": spec.min_notional,
        "maxQuoteAmountMarket": spec.max_quote_amount_market,
        "fullName": spec.full_name,
        "tradeSideType": 1,
    }


def ticker_24h(
    spec: SymbolSpec,
    window: Agg | None,
    prev_close: int | None,
    top: Top | None,
    now_ms: int,
) -> dict[str, Any]:
    """The rolling 24h ticker: the aggregate of the last 1440 one-minute candles."""
    qp, bp = spec.quote_prec, spec.base_prec
    if window is None or top is None:  # not listed yet
        zero = units_str(0, qp)
        return _ticker(spec.symbol, now_ms, {"prevClosePrice": zero, "lastPrice": zero})
    last = top.last.price
    reference = prev_close if prev_close is not None else window.open
    return _ticker(
        spec.symbol,
        now_ms,
        {
            "priceChange": units_str(last - window.open, qp),
            "priceChangePercent": change_fraction(last, window.open),
            "prevClosePrice": units_str(reference, qp),
            "lastPrice": units_str(last, qp),
            "bidPrice": units_str(top.bid, qp),
            "bidQty": units_str(top.bid_qty, bp),
            "askPrice": units_str(top.ask, qp),
            "askQty": units_str(top.ask_qty, bp),
            "openPrice": units_str(window.open, qp),
            "highPrice": units_str(window.high, qp),
            "lowPrice": units_str(window.low, qp),
            "volume": units_str(window.volume, bp),
            "quoteVolume": units_str(window.quote, qp + bp),
        },
    )


def _ticker(symbol: str, now_ms: int, fields: dict[str, str]) -> dict[str, Any]:
    keys = (
        "priceChange",
        "priceChangePercent",
        "prevClosePrice",
        "lastPrice",
        "bidPrice",
        "bidQty",
        "askPrice",
        "askQty",
        "openPrice",
        "highPrice",
        "lowPrice",
        "volume",
        "quoteVolume",
    )
    out: dict[str, Any] = {"symbol": symbol}
    for key in keys:
        out[key] = fields.get(key, "0")
    out.update(openTime=now_ms - 86_400_000, closeTime=now_ms, count=None)
    return out


def book_ticker(spec: SymbolSpec, top: Top | None) -> dict[str, Any]:
    if top is None:
        return {"symbol": spec.symbol, "bidPrice": "", "bidQty": "", "askPrice": "", "askQty": ""}
    qp, bp = spec.quote_prec, spec.base_prec
    return {
        "symbol": spec.symbol,
        "bidPrice": units_str(top.bid, qp),
        "bidQty": units_str(top.bid_qty, bp),
        "askPrice": units_str(top.ask, qp),
        "askQty": units_str(top.ask_qty, bp),
    }


def depth(
    spec: SymbolSpec,
    bids: list[tuple[int, int]],
    asks: list[tuple[int, int]],
    version: int,
    now_ms: int,
) -> dict[str, Any]:
    qp, bp = spec.quote_prec, spec.base_prec
    return {
        "lastUpdateId": str(version),
        "bids": [[units_str(p, qp), units_str(q, bp)] for p, q in bids],
        "asks": [[units_str(p, qp), units_str(q, bp)] for p, q in asks],
        "timestamp": str(now_ms),
    }


def kline_row(spec: SymbolSpec, open_ms: int, close_ms: int, agg: Agg) -> list[Any]:
    """MEXC's 8 fields: openTime, open, high, low, close, volume, closeTime, quote volume."""
    qp = spec.quote_prec
    return [
        open_ms,
        units_str(agg.open, qp),
        units_str(agg.high, qp),
        units_str(agg.low, qp),
        units_str(agg.close, qp),
        units_str(agg.volume, spec.base_prec),
        close_ms,
        units_str(agg.quote, qp + spec.base_prec),
    ]


def trade(spec: SymbolSpec, trade: Trade) -> dict[str, Any]:
    qp, bp = spec.quote_prec, spec.base_prec
    return {
        "id": None,
        "price": units_str(trade.price, qp),
        "qty": units_str(trade.qty, bp),
        "quoteQty": units_str(trade.price * trade.qty, qp + bp),
        "time": trade.t,
        "isBuyerMaker": not trade.buy,
        "isBestMatch": True,
    }


def agg_trade(spec: SymbolSpec, trade: Trade) -> dict[str, Any]:
    """One /api/v3/aggTrades entry: every simulated trade is its own aggregate."""
    return {
        "a": None,
        "f": None,
        "l": None,
        "p": units_str(trade.price, spec.quote_prec),
        "q": units_str(trade.qty, spec.base_prec),
        "T": trade.t,
        "m": not trade.buy,
        "M": True,
    }
