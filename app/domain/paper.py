"""Simulated market orders: fill against the current book with MEXC's symbol rules and fees.

Conventions:
- The quantity is rounded DOWN to the symbol's step (10**-qty_precision) before any check.
- No partial fills: a book too thin for the whole quantity refuses the order.
- avg_price = cost / qty, rounded ROUND_HALF_UP to the price tick (10**-price_precision);
  notional = qty * avg_price exactly, so it can differ from the walked cost by < qty * tick / 2.
- fee = notional * taker_fee in the quote currency, rounded UP to 8 decimal places: the
  exchange never undercharges.
- slippage_pct compares the rounded avg_price with the best price of the side taken.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Protocol

from app.domain.book import slippage_pct, walk_book
from app.domain.trading import Fill, MarketView, Side, SymbolRules

FEE_QUANTUM = Decimal("0.00000001")

BAD_QTY = "bad_qty"
BELOW_MIN_QTY = "below_min_qty"
BELOW_MIN_NOTIONAL = "below_min_notional"
NO_BOOK = "no_book"
THIN_BOOK = "thin_book"
SLIPPAGE = "slippage"


class OrderRejected(Exception):
    """The order was refused; nothing was filled. `reason` is a machine word."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class Broker(Protocol):
    def market_order(
        self, symbol: str, side: Side, qty: Decimal, book: MarketView, rules: SymbolRules
    ) -> Fill:
        """Fill `qty` of `symbol` at market or raise OrderRejected."""
        ...


def step(precision: int) -> Decimal:
    """The smallest increment for a number of decimal places: 2 → 0.01, 0 → 1."""
    return Decimal(1).scaleb(-precision)


def round_qty(qty: Decimal, qty_precision: int) -> Decimal:
    return qty.quantize(step(qty_precision), rounding=ROUND_DOWN)


def taker_fee(notional: Decimal, fee_rate: Decimal) -> Decimal:
    return (notional * fee_rate).quantize(FEE_QUANTUM, rounding=ROUND_UP)


class PaperBroker:
    def __init__(self, max_slippage_pct: Decimal) -> None:
        if max_slippage_pct < 0:
            raise ValueError(f"max_slippage_pct must be >= 0, got {max_slippage_pct}")
        self.max_slippage_pct = max_slippage_pct

    def market_order(
        self, symbol: str, side: Side, qty: Decimal, book: MarketView, rules: SymbolRules
    ) -> Fill:
        if book.symbol != symbol or rules.symbol != symbol:
            raise ValueError(
                f"order for {symbol} given the book of {book.symbol} and rules of {rules.symbol}"
            )
        if not qty.is_finite():
            raise OrderRejected(BAD_QTY, f"{symbol} quantity {qty} is not a number")
        rounded = round_qty(qty, rules.qty_precision)
        if rounded <= 0:
            raise OrderRejected(
                BAD_QTY,
                f"{symbol} quantity {qty} is {rounded} after rounding down to "
                f"{rules.qty_precision} decimals",
            )
        if rounded < rules.min_qty:
            raise OrderRejected(
                BELOW_MIN_QTY, f"{symbol} quantity {rounded} is below the minimum {rules.min_qty}"
            )

        levels = book.asks if side is Side.BUY else book.bids
        book_side = "asks" if side is Side.BUY else "bids"
        if not levels:
            raise OrderRejected(NO_BOOK, f"{symbol} has no {book_side} to {side} against")
        walk = walk_book(levels, rounded)
        if walk.filled_qty < rounded:
            raise OrderRejected(
                THIN_BOOK,
                f"{symbol} {book_side} hold only {walk.filled_qty} over {walk.levels_used} "
                f"levels for a {side} of {rounded}",
            )

        avg_price = (walk.cost / rounded).quantize(
            step(rules.price_precision), rounding=ROUND_HALF_UP
        )
        notional = rounded * avg_price
        if notional < rules.min_notional:
            raise OrderRejected(
                BELOW_MIN_NOTIONAL,
                f"{symbol} notional {notional} ({rounded} at {avg_price}) is below the minimum "
                f"{rules.min_notional}",
            )
        best = levels[0][0]
        slippage = slippage_pct(avg_price, best)
        if slippage > self.max_slippage_pct:
            raise OrderRejected(
                SLIPPAGE,
                f"{symbol} {side} of {rounded} would fill at {avg_price} against best {best}: "
                f"slippage {slippage:.6f} above the limit {self.max_slippage_pct}",
            )
        return Fill(
            symbol=symbol,
            side=side,
            qty=rounded,
            avg_price=avg_price,
            notional=notional,
            fee=taker_fee(notional, rules.taker_fee),
            slippage_pct=slippage,
            levels_used=walk.levels_used,
        )
