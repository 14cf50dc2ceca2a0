"""One decision in progress: the inputs, the state as it evolves, and what was recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.domain.book import BookWalk
from app.domain.risk.limits import LAYERS, RiskLimits
from app.domain.risk.values import show
from app.domain.trading import (
    ZERO,
    Alert,
    AlertCode,
    AlertLevel,
    LayerVerdict,
    MarketView,
    PortfolioState,
    Position,
    RiskDecision,
    RiskState,
    Side,
    Signal,
)


@dataclass(slots=True)
class Run:
    """One decision in progress: inputs, the state as it evolves, and what was recorded."""

    signal: Signal
    portfolio: PortfolioState
    market: MarketView
    limits: RiskLimits
    now: datetime
    state: RiskState
    size: Decimal  # the working size: clipped to the position for a SELL, trimmed for a BUY
    verdicts: list[LayerVerdict] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    walk: BookWalk | None = None  # layer 2's estimate for the requested size

    @property
    def is_exit(self) -> bool:
        return self.signal.direction is Side.SELL

    @property
    def position(self) -> Position | None:
        return self.portfolio.positions.get(self.signal.symbol)

    @property
    def held_qty(self) -> Decimal:
        position = self.position
        return position.qty if position and position.qty > 0 else ZERO

    def record(self, name: str, passed: bool, action: str, values: dict[str, Any]) -> bool:
        shown = {key: show(value) for key, value in values.items()}
        self.verdicts.append(LayerVerdict(LAYERS.index(name) + 1, name, passed, action, shown))
        return passed

    def alert(self, code: AlertCode, level: AlertLevel, message: str) -> None:
        self.alerts.append(Alert(code, level, message, self.now, self.signal.symbol))

    def decision(self, stop: Decimal | None = None) -> RiskDecision:
        rejected = next((v.name for v in self.verdicts if not v.passed), None)
        return RiskDecision(
            approved=rejected is None,
            size=ZERO if rejected else self.size,
            verdicts=tuple(self.verdicts),
            alerts=tuple(self.alerts),
            state=self.state,
            rejected_by=rejected,
            stop_price=None if rejected else stop,
        )
