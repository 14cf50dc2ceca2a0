"""Trading types shared by the strategy, risk, paper broker and portfolio code. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class AlertLevel(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class AlertCode(StrEnum):
    RISK_LIMIT = "RISK_LIMIT"
    CIRCUIT_BREAKER = "CIRCUIT_BREAKER"
    DATA_STALE = "DATA_STALE"


@dataclass(frozen=True, slots=True)
class Alert:
    code: AlertCode
    level: AlertLevel
    message: str
    timestamp: datetime
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """What a strategy wants. `size` is a base-asset quantity; `price` the reference price."""

    symbol: str
    direction: Side
    size: Decimal
    signal_strength: Decimal  # 0..1
    timestamp: datetime
    price: Decimal
    reason: str
    is_exit: bool = False  # an exit closes (part of) a position: stop-loss or reversal


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    qty: Decimal  # base asset held (long only: >= 0)
    avg_entry: Decimal  # average entry price, fees excluded
    last_price: Decimal  # latest mark price

    @property
    def market_value(self) -> Decimal:
        return self.qty * self.last_price

    @property
    def unrealized_pnl(self) -> Decimal:
        return (self.last_price - self.avg_entry) * self.qty


@dataclass(frozen=True, slots=True)
class PortfolioState:
    """Cash and positions in the quote currency (USDT)."""

    cash: Decimal
    positions: dict[str, Position] = field(default_factory=dict)
    realized_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO
    day_start_equity: Decimal | None = None  # equity at 00:00 UTC of `day`
    day: date | None = None

    @property
    def exposure(self) -> Decimal:
        """Market value of all positions."""
        return sum((p.market_value for p in self.positions.values()), ZERO)

    @property
    def equity(self) -> Decimal:
        return self.cash + self.exposure

    @property
    def exposure_pct(self) -> Decimal:
        equity = self.equity
        return self.exposure / equity if equity > 0 else ZERO

    @property
    def daily_drawdown_pct(self) -> Decimal:
        """Loss since the start of the UTC day as a fraction of that day's starting equity."""
        start = self.day_start_equity
        if not start or start <= 0:
            return ZERO
        return max(ZERO, (start - self.equity) / start)


@dataclass(frozen=True, slots=True)
class MarketView:
    """What risk and execution know about one symbol at decision time."""

    symbol: str
    last_price: Decimal
    bids: tuple[tuple[Decimal, Decimal], ...]  # best first
    asks: tuple[tuple[Decimal, Decimal], ...]  # best first
    data_time: datetime  # when this data was current (ticker closeTime / book fetch)
    typical_spread_pct: Decimal | None = None  # median recent relative spread, None if unknown
    qty_step: Decimal | None = None  # the symbol's quantity step (10**-baseAssetPrecision)

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0][0] if self.asks else None

    @property
    def spread_pct(self) -> Decimal | None:
        """(ask - bid) / mid."""
        if not self.bids or not self.asks:
            return None
        bid, ask = self.bids[0][0], self.asks[0][0]
        return (ask - bid) / ((ask + bid) / 2)


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """MEXC's order rules for one symbol (from exchangeInfo)."""

    symbol: str
    qty_precision: int  # baseAssetPrecision: quantity step 10**-qty_precision
    price_precision: int  # quoteAssetPrecision
    min_qty: Decimal  # baseSizePrecision
    min_notional: Decimal  # quoteAmountPrecision
    taker_fee: Decimal  # takerCommission, a fraction (0.0005 = 0.05 %)
    maker_fee: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class RiskState:
    """The risk manager's memory between decisions (persisted per portfolio)."""

    halted: bool = False
    halt_reason: str | None = None
    halted_at: datetime | None = None
    breaker_paused_until: datetime | None = None
    breaker_trips: int = 0  # consecutive circuit-breaker trips; > 10 escalates to a halt
    stale_paused: bool = False


@dataclass(frozen=True, slots=True)
class LayerVerdict:
    layer: int  # 1..6, priority order
    name: str  # "daily_drawdown", "market_anomaly", "data_staleness", "exposure",
    # "position_size", "stop_loss"
    passed: bool
    action: str  # "pass", "halt", "pause", "block", "trim", "reject", "set_stop"
    values: dict[str, str]  # what the layer saw (Decimals as strings), for the audit trail


@dataclass(frozen=True, slots=True)
class RiskDecision:
    approved: bool
    size: Decimal  # approved size (possibly trimmed); 0 when rejected
    verdicts: tuple[LayerVerdict, ...]
    alerts: tuple[Alert, ...]
    state: RiskState  # the risk state after this decision
    rejected_by: str | None = None  # the first layer that rejected
    stop_price: Decimal | None = None  # for an approved entry: the stop-loss level


@dataclass(frozen=True, slots=True)
class Fill:
    """A simulated market-order fill."""

    symbol: str
    side: Side
    qty: Decimal
    avg_price: Decimal  # volume-weighted, rounded to the price precision
    notional: Decimal  # qty * avg_price (quote)
    fee: Decimal  # in quote currency
    slippage_pct: Decimal  # |avg_price - best| / best
    levels_used: int
