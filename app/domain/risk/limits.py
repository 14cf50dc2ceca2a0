"""The six layers' names, the thresholds (`RiskLimits`) and the arithmetic's precision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from app.domain.trading import ZERO

HALT_DRAWDOWN = "drawdown"
HALT_OPERATOR = "operator"
HALT_BREAKER = "circuit_breaker"

DAILY_DRAWDOWN = "daily_drawdown"
MARKET_ANOMALY = "market_anomaly"
DATA_STALENESS = "data_staleness"
EXPOSURE = "exposure"
POSITION_SIZE = "position_size"
STOP_LOSS = "stop_loss"
LAYERS = (DAILY_DRAWDOWN, MARKET_ANOMALY, DATA_STALENESS, EXPOSURE, POSITION_SIZE, STOP_LOSS)

STOP_LOSS_REASON = "stop-loss"  # reason prefix of the exits `stop_loss_exits` creates
TRIM_QUANTUM = Decimal("1e-18")  # trimmed sizes are rounded down to this step
PRECISION = 60
ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The thresholds of the six layers. Percentages are fractions (0.10 = 10 %)."""

    max_daily_drawdown_pct: Decimal
    max_slippage_pct: Decimal
    max_spread_multiplier: Decimal
    data_stale_timeout: timedelta
    max_exposure_pct: Decimal
    max_position_pct: Decimal
    stop_loss_pct: Decimal
    breaker_pause: timedelta = timedelta(seconds=60)
    breaker_max_retries: int = 10
    exposure_alert_ratio: Decimal = Decimal("0.8")

    def __post_init__(self) -> None:
        bounds = {  # name: (low, high, high inclusive)
            "max_daily_drawdown_pct": (ZERO, ONE, True),
            "max_slippage_pct": (ZERO, ONE, True),
            "max_exposure_pct": (ZERO, ONE, True),
            "max_position_pct": (ZERO, ONE, True),
            "exposure_alert_ratio": (ZERO, ONE, True),
            "stop_loss_pct": (ZERO, ONE, False),
            "max_spread_multiplier": (ZERO, None, False),
        }
        for name, (low, high, inclusive) in bounds.items():
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not _within(value, low, high, inclusive):
                top = f"{high}]" if inclusive else f"{high if high is not None else 'inf'})"
                raise ValueError(f"{name} must be a Decimal in ({low}, {top}, got {value!r}")
        if self.data_stale_timeout <= timedelta(0) or self.breaker_pause < timedelta(0):
            raise ValueError("data_stale_timeout must be positive and breaker_pause not negative")
        if self.breaker_max_retries < 0:
            raise ValueError(f"breaker_max_retries must be >= 0, got {self.breaker_max_retries}")

    @classmethod
    def from_settings(cls, settings: Any) -> RiskLimits:
        """Read the risk settings (duck-typed: any object with the `Settings` attribute names)."""
        return cls(
            max_daily_drawdown_pct=_decimal(settings.max_daily_drawdown_pct),
            max_slippage_pct=_decimal(settings.max_slippage_pct),
            max_spread_multiplier=_decimal(settings.max_spread_multiplier),
            data_stale_timeout=timedelta(seconds=int(settings.data_stale_timeout_sec)),
            max_exposure_pct=_decimal(settings.max_exposure_pct),
            max_position_pct=_decimal(settings.max_position_pct),
            stop_loss_pct=_decimal(settings.stop_loss_pct),
        )


def _within(value: Decimal, low: Decimal, high: Decimal | None, inclusive: bool) -> bool:
    if value <= low or high is None:
        return value > low
    return value <= high if inclusive else value < high


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def require_utc(now: datetime) -> None:
    if now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime (UTC)")
