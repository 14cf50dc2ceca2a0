"""The risk manager: six protection layers in priority order (SPEC §4). Pure: no I/O, no clock.

`decide` runs the layers for one signal and stops at the first that rejects; every layer it
ran leaves a `LayerVerdict` with the values it saw. The `RiskState` it returns is the only
memory between decisions, and the operator functions (`halt`, `resume`, `release_drawdown`)
are the only way to leave a manual halt.

Halts (`RiskState.halt_reason` is `"<kind>"` or `"<kind>: <detail>"`, see `halt_kind`):

- `drawdown`: the daily drawdown reached its limit. Only `release_drawdown` clears it; it
  survives 00:00 UTC. A drawdown breach also replaces an operator or breaker halt, so that
  `resume` can never clear a halt the drawdown alone would impose.
- `circuit_breaker`: the breaker tripped more than `breaker_max_retries` times in a row.
  Cleared by `resume`.
- `operator`: set by `halt`, cleared by `resume`.

While halted no entry (BUY) passes layer 1. Exits (every SELL: the book is long-only, so a
SELL can only reduce a position) pass layers 1, 4 and 5 even while halted, since they reduce
risk, but layers 2 and 3 still apply to them: a price we can't trust can't be filled.

Pricing: layer 2 estimates the market order's average fill by walking the book for the
requested size. Layers 4 and 5 value the symbol, the existing holding included, at
max(estimated fill, last price) and compare against the equity re-marked the same way, so the
limits hold right after the fill whether the portfolio marks the position at its fill price or
at the last price. Taker fees are not known here and are not included.

Arithmetic runs in a 60-digit decimal context so that sums and products of prices and
quantities are exact; limits are compared by cross-multiplication, and the only rounding is
the trimmed size, which is rounded down to the symbol's quantity step (`MarketView.qty_step`,
or `TRIM_QUANTUM` when the step is unknown).
"""

from app.domain.risk.anomaly import trip_breaker
from app.domain.risk.decision import decide
from app.domain.risk.drawdown import check_state
from app.domain.risk.limits import (
    DAILY_DRAWDOWN,
    DATA_STALENESS,
    EXPOSURE,
    HALT_BREAKER,
    HALT_DRAWDOWN,
    HALT_OPERATOR,
    LAYERS,
    MARKET_ANOMALY,
    POSITION_SIZE,
    PRECISION,
    STOP_LOSS,
    STOP_LOSS_REASON,
    TRIM_QUANTUM,
    RiskLimits,
)
from app.domain.risk.staleness import check_freshness
from app.domain.risk.state import halt, halt_kind, release_drawdown, resume
from app.domain.risk.stop_loss import stop_loss_exits, stop_price
from app.domain.trading import RiskState

__all__ = [
    "DAILY_DRAWDOWN",
    "DATA_STALENESS",
    "EXPOSURE",
    "HALT_BREAKER",
    "HALT_DRAWDOWN",
    "HALT_OPERATOR",
    "LAYERS",
    "MARKET_ANOMALY",
    "POSITION_SIZE",
    "PRECISION",
    "STOP_LOSS",
    "STOP_LOSS_REASON",
    "TRIM_QUANTUM",
    "RiskLimits",
    "RiskState",
    "check_freshness",
    "check_state",
    "decide",
    "halt",
    "halt_kind",
    "release_drawdown",
    "resume",
    "stop_loss_exits",
    "stop_price",
    "trip_breaker",
]
