"""Numbers for people: prices and quantities at the symbol's precision, money in USDT with two
decimals, fractions as percents, times in one ISO format (UTC).

The database keeps exact Decimals and fractions (0.05 = 5 %, as the settings); this module is
the one place that turns them into what the admin panel and the CLI show. Pure functions,
used by both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

CURRENCY = "USDT"
MONEY_PLACES = 2
PCT_PLACES = 2  # in the panel (the exact value in a tooltip)
PCT_JSON_PLACES = 4  # in the CLI's JSON (`--exact` for every digit)
DEFAULT_PRECISION = 8  # for a symbol whose trading rules are unknown
HUNDRED = Decimal(100)


def as_decimal(value: Any) -> Decimal | None:
    """A Decimal from a Decimal, int or decimal string; None for None, "" or non-numbers."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def plain(value: Decimal) -> str:
    """The exact value without exponent or needless trailing zeros: "0", "1.5", "0.0001"."""
    if value == 0:
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def fixed(value: Decimal, places: int) -> str:
    """`value` rounded half-even to `places` decimals: fixed("1.005", 2) == "1.00"."""
    quantum = Decimal(1).scaleb(-places)
    result = value.quantize(quantum, rounding=ROUND_HALF_EVEN)
    return format(result + 0 if result != 0 else abs(result), "f")


def money(value: Decimal) -> str:
    """USDT with two decimals: "1234.57"."""
    return fixed(value, MONEY_PLACES)


def money_text(value: Decimal) -> str:
    """USDT for reading: "1,234.57 USDT", "-0.36 USDT"."""
    amount = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return f"{amount + 0 if amount != 0 else abs(amount):,.2f} {CURRENCY}"


def percent(fraction: Decimal, places: int | None = PCT_PLACES) -> str:
    """A fraction as a percent number: percent(Decimal("0.0123")) == "1.23"; places=None keeps
    every digit."""
    value = fraction * HUNDRED
    return plain(value) if places is None else fixed(value, places)


def percent_text(fraction: Decimal, places: int = PCT_PLACES) -> str:
    """ "1.23 %"; a tiny non-zero value keeps two significant digits ("0.00017 %")."""
    value = fraction * HUNDRED
    if value != 0 and abs(value) < Decimal(1).scaleb(-places):
        digits = max(places, -value.adjusted() + 1)
        return f"{fixed(value, digits)} %"
    return f"{fixed(value, places)} %"


def at_precision(value: Decimal, precision: int | None) -> str:
    """A price or quantity at its symbol's number of decimals."""
    return fixed(value, DEFAULT_PRECISION if precision is None else precision)


def iso(value: datetime) -> str:
    """The one time format: 2026-11-30T01:52:02Z (UTC, seconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Precision:
    """How many decimals a symbol's prices and quantities have (MEXC's exchangeInfo)."""

    price: int = DEFAULT_PRECISION
    qty: int = DEFAULT_PRECISION


# What each number in a risk verdict or a strategy evaluation is, by its key. Keys ending in
# `_pct` (and the plain `limit` of layers 1, 4, 5) hold fractions.
VALUE_KINDS: dict[str, str] = {
    # money, USDT
    "equity": "money",
    "day_start_equity": "money",
    "exposure_before": "money",
    "equity_before": "money",
    "exposure_after": "money",
    "equity_after": "money",
    "limit_value": "money",
    "position_value_before": "money",
    "position_value_after": "money",
    # prices
    "best_price": "price",
    "estimated_avg_price": "price",
    "valued_at_price": "price",
    "estimated_entry_price": "price",
    "stop_price": "price",
    "price": "price",
    "reference_close": "price",
    "last_open": "price",
    "last_close": "price",
    "avg_entry": "price",
    # quantities
    "size": "qty",
    "filled_qty": "qty",
    "requested": "qty",
    "trimmed_from": "qty",
    "trimmed_to": "qty",
    "position_qty": "qty",
    # fractions shown as percents
    "limit": "fraction",
    "multiplier": "number",
    "signal_strength": "number",
    # durations and times
    "seconds_left": "seconds",
    "age_seconds": "seconds",
    "timeout_seconds": "seconds",
    "data_time": "time",
    "paused_until": "time",
    # flags
    "halted": "flag",
}

LABELS: dict[str, str] = {
    "limit": "limit",
    "limit_value": "limit (USDT)",
    "halt_reason": "halt reason",
    "day_start_equity": "equity at 00:00 UTC",
}


def value_kind(key: str) -> str:
    if key in VALUE_KINDS:
        return VALUE_KINDS[key]
    return "fraction" if key.endswith("_pct") else "text"


def label(key: str) -> str:
    return LABELS.get(key, key.removesuffix("_pct").replace("_", " "))


@dataclass(frozen=True, slots=True)
class Shown:
    """One recorded value as a person reads it, with the exact stored value beside it."""

    key: str
    label: str
    text: str  # "1.23 %", "1,003.57 USDT", "0.00100000", "yes"
    exact: str  # the stored value ("0.0123"), "" when there is none
    kind: str


def show(key: str, raw: Any, precision: Precision = Precision()) -> Shown:
    """How a verdict or evaluation value reads: by its kind, at the symbol's precision."""
    kind = value_kind(key)
    exact = "" if raw is None else str(raw)
    number = as_decimal(raw)
    if kind == "flag" or isinstance(raw, bool) or exact.lower() in ("true", "false"):
        text = "yes" if exact.lower() == "true" else "no" if exact.lower() == "false" else exact
        return Shown(key, label(key), text, exact, "flag")
    if number is None or kind in ("text", "time"):
        text = exact.replace("+00:00", "Z") if kind == "time" else exact
        return Shown(key, label(key), text, exact, kind)
    if kind == "money":
        text = money_text(number)
    elif kind == "price":
        text = at_precision(number, precision.price)
    elif kind == "qty":
        text = at_precision(number, precision.qty)
    elif kind == "fraction":
        text = percent_text(number)
    elif kind == "seconds":
        text = f"{fixed(number, 1)} s"
    else:
        text = plain(number)
    return Shown(key, label(key), text, exact, kind)


def show_all(values: Mapping[str, Any], precision: Precision = Precision()) -> list[Shown]:
    return [show(key, raw, precision) for key, raw in values.items()]


def json_value(key: str, raw: Any, precision: Precision, exact: bool) -> tuple[str, Any]:
    """A verdict or evaluation value for the CLI's JSON: (key, value).

    Fractions come out in percent under a key ending in `_pct` ("limit" -> "limit_pct"),
    flags as booleans, empty values as null; numbers at the symbol's precision (money to the
    cent), or exactly with `exact`."""
    shown = show(key, raw, precision)
    if shown.exact == "":
        return key, None
    if shown.kind == "flag":
        return key, shown.exact.lower() == "true"
    number = as_decimal(raw)
    if number is None:
        return key, shown.text
    if shown.kind == "fraction":
        out_key = key if key.endswith("_pct") else f"{key}_pct"
        return out_key, percent(number, None if exact else PCT_JSON_PLACES)
    if exact:
        return key, plain(number)
    if shown.kind == "money":
        return key, money(number)
    if shown.kind in ("price", "qty"):
        return key, shown.text
    return key, plain(number)


def json_values(
    values: Mapping[str, Any], precision: Precision = Precision(), exact: bool = False
) -> dict[str, Any]:
    return dict(json_value(key, raw, precision, exact) for key, raw in values.items())
