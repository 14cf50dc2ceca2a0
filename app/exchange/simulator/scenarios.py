"""Market scenarios for the MEXC simulator: per-symbol overrides from a moment on.

A scenario changes what the simulated market serves for one symbol from `started_at_ms` on:

    price_factor       Decimal > 0    every price multiplied by it (0.85: a crash, 1.2: a rally)
    spread_factor      Decimal >= 1   the half-spread around the mid multiplied by it
    depth_factor       Decimal > 0    book quantities multiplied by it (0.001: a thin book)
    trend_pct_per_min  Decimal        a linear drift in PERCENT per minute since started_at_ms:
                                      price * (1 + trend_pct_per_min / 100 * minutes elapsed)

Every field defaults to "no change" (1, 1, 1, 0), so a scenario with no fields ends an earlier
one while keeping its effect on past candles. Factors are relative to the seed model, never
compounded with an earlier scenario of the same symbol.

Spec syntax (CLI `--scenario`, `SimulatorServer(scenarios=[...])`, `POST /_sim/scenarios
{"spec": ...}`):

    SYMBOL[:key=value[,key=value...]]

keys: price_factor, spread_factor, depth_factor, trend_pct_per_min, started_at_ms (int ms;
default: when the scenario is applied). Example: "BTCUSDT:price_factor=0.8,spread_factor=5".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

SCENARIO_FIELDS = ("price_factor", "spread_factor", "depth_factor", "trend_pct_per_min")
_ZERO = Decimal(0)
_ONE = Decimal(1)
# Bounds that keep every price a finite float with its decimals intact.
_MAX_FACTOR = Decimal(1_000_000)
_MAX_TREND = Decimal(1_000_000)


def _to_decimal(name: str, value: Any) -> Decimal:
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"bad scenario field {name}={value!r}: must be a decimal number")
    else:
        try:
            d = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(
                f"bad scenario field {name}={value!r}: must be a decimal number"
            ) from None
    if not d.is_finite():
        raise ValueError(f"bad scenario field {name}={value!r}: must be a finite number")
    return d


def _check(name: str, d: Decimal) -> None:
    if name == "price_factor" and not _ZERO < d <= _MAX_FACTOR:
        raise ValueError(f"bad scenario field price_factor={d}: must be > 0 and <= 1000000")
    if name == "spread_factor" and not _ONE <= d <= _MAX_FACTOR:
        raise ValueError(f"bad scenario field spread_factor={d}: must be >= 1 and <= 1000000")
    if name == "depth_factor" and not _ZERO < d <= _MAX_FACTOR:
        raise ValueError(f"bad scenario field depth_factor={d}: must be > 0 and <= 1000000")
    if name == "trend_pct_per_min" and not -_MAX_TREND <= d <= _MAX_TREND:
        raise ValueError(
            f"bad scenario field trend_pct_per_min={d}: must be between -1000000 and 1000000"
        )


@dataclass(frozen=True, slots=True)
class Scenario:
    """One symbol's overrides; started_at_ms None means "stamp when applied"."""

    symbol: str
    price_factor: Decimal = _ONE
    spread_factor: Decimal = _ONE
    depth_factor: Decimal = _ONE
    trend_pct_per_min: Decimal = _ZERO
    started_at_ms: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol.strip():
            raise ValueError("scenario needs a 'symbol'")
        for name in SCENARIO_FIELDS:
            d = _to_decimal(name, getattr(self, name))
            _check(name, d)
            object.__setattr__(self, name, d)
        t = self.started_at_ms
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 0):
            raise ValueError(f"bad scenario field started_at_ms={t!r}: must be an int >= 0")

    def stamped(self, started_at_ms: int) -> Scenario:
        """This scenario with started_at_ms set, unless it already has one."""
        if self.started_at_ms is not None:
            return self
        return replace(self, started_at_ms=started_at_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "price_factor": str(self.price_factor),
            "spread_factor": str(self.spread_factor),
            "depth_factor": str(self.depth_factor),
            "trend_pct_per_min": str(self.trend_pct_per_min),
            "started_at_ms": self.started_at_ms,
        }


def _int_field(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"bad scenario field {name}={value!r}: must be an int >= 0")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ValueError(f"bad scenario field {name}={value!r}: must be an int >= 0")


def scenario_from_fields(symbol: str, **fields: Any) -> Scenario:
    """Build a Scenario from keyword fields; ValueError names an unknown or bad field."""
    unknown = sorted(set(fields) - set(SCENARIO_FIELDS) - {"started_at_ms"})
    if unknown:
        raise ValueError(
            f"unknown scenario field(s): {', '.join(unknown)} (expected "
            f"{', '.join(SCENARIO_FIELDS)}, started_at_ms)"
        )
    values: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    for name in SCENARIO_FIELDS:
        if name in values:
            values[name] = _to_decimal(name, values[name])
    if "started_at_ms" in values:
        values["started_at_ms"] = _int_field("started_at_ms", values["started_at_ms"])
    return Scenario(symbol, **values)


def parse_scenario_spec(spec: str) -> Scenario:
    """Parse "SYMBOL[:key=value,...]" into a Scenario (started_at_ms None unless given)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("empty scenario spec")
    symbol, _, rest = spec.strip().partition(":")
    symbol = symbol.strip()
    if not symbol or "=" in symbol or "," in symbol:
        raise ValueError(f"bad scenario spec {spec!r}: expected SYMBOL[:key=value,...]")
    fields: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise ValueError(f"bad scenario option {part!r}: expected key=value")
        if key in fields:
            raise ValueError(f"duplicate scenario option {key!r}")
        fields[key] = value
    return scenario_from_fields(symbol, **fields)


def scenario_from_dict(data: Any) -> Scenario:
    """Build a Scenario from a JSON object: {"spec": "..."} or {"symbol": ..., fields...}."""
    if not isinstance(data, dict):
        raise ValueError("scenario must be a JSON object")
    if "spec" in data:
        if len(data) != 1:
            raise ValueError("'spec' cannot be combined with other scenario fields")
        return parse_scenario_spec(data["spec"])
    fields = dict(data)
    symbol = fields.pop("symbol", None)
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValueError("scenario needs a 'symbol' (string)")
    return scenario_from_fields(symbol.strip(), **fields)
