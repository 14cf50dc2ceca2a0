"""Walking an order book: what a market order of a given size would pay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

Level = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class BookWalk:
    filled_qty: Decimal  # may be less than asked when the book is too thin
    cost: Decimal  # sum of price * qty over the levels taken
    levels_used: int

    @property
    def avg_price(self) -> Decimal | None:
        return self.cost / self.filled_qty if self.filled_qty else None


def walk_book(levels: Sequence[Level], qty: Decimal) -> BookWalk:
    """Take `qty` from `levels` (best first): asks for a buy, bids for a sell."""
    if qty <= 0:
        raise ValueError(f"quantity must be positive, got {qty}")
    remaining, cost, used = qty, Decimal(0), 0
    for price, available in levels:
        if remaining <= 0:
            break
        take = min(remaining, available)
        cost += take * price
        remaining -= take
        used += 1
    return BookWalk(filled_qty=qty - remaining, cost=cost, levels_used=used)


def slippage_pct(avg_price: Decimal, best_price: Decimal) -> Decimal:
    """How far the average fill is from the best price, as a positive fraction."""
    return abs(avg_price - best_price) / best_price
