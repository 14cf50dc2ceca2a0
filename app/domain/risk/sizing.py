"""What layers 4 and 5 value a BUY at: the portfolio right after it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, localcontext

from app.domain.risk.limits import TRIM_QUANTUM
from app.domain.risk.run import Run
from app.domain.risk.values import strip
from app.domain.trading import ZERO


@dataclass(frozen=True, slots=True)
class Sizing:
    """The portfolio right after a BUY, with the symbol valued at `price`."""

    price: Decimal  # max(estimated fill, last price)
    held_qty: Decimal
    equity_after: Decimal  # independent of the size: buying at `price` and marking at it
    other_exposure: Decimal  # every other symbol
    allowed_size: Decimal  # what layer 5 lets through: the signal's size, maybe trimmed

    def position_after(self, size: Decimal) -> Decimal:
        return (self.held_qty + size) * self.price

    def exposure_after(self, size: Decimal) -> Decimal:
        return self.other_exposure + self.position_after(size)


def size_buy(run: Run) -> Sizing:
    assert run.walk is not None and run.walk.avg_price is not None  # layer 2 passed
    price = max(run.walk.avg_price, run.market.last_price)
    position = run.position
    held = position.qty if position else ZERO
    held_value = position.market_value if position else ZERO
    equity_after = run.portfolio.equity - held_value + held * price
    cap = run.limits.max_position_pct * equity_after
    with localcontext(rounding=ROUND_FLOOR):
        room = cap / price - held if price > 0 else ZERO
        step = run.market.qty_step or TRIM_QUANTUM
        room = strip(room.quantize(step)) if room > 0 else ZERO
    return Sizing(
        price=price,
        held_qty=held,
        equity_after=equity_after,
        other_exposure=run.portfolio.exposure - held_value,
        allowed_size=min(run.signal.size, room),
    )
