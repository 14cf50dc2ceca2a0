"""How a verdict's values and an alert's numbers are written: exact, without exponents."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

from app.domain.risk.limits import ONE


def strip(value: Decimal) -> Decimal:
    """The same number without trailing zeros: 1.000 -> 1, 0.50 -> 0.5, 100 stays 100."""
    return value.quantize(ONE) if value == value.to_integral_value() else value.normalize()


def plain(value: Decimal) -> Decimal:
    """`value` at the default 28-digit precision: exact values of that size are unchanged, only
    the long tails of quotients are cut."""
    with localcontext(prec=28):
        return +value


def show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        return str(plain(value))
    return str(value)


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    if denominator <= 0:
        return None
    with localcontext(prec=12):
        return +(numerator / denominator)


def pct(fraction: Decimal) -> str:
    with localcontext(prec=12):
        return f"{(fraction * 100).normalize():f} %"


def ratio_pct(numerator: Decimal, denominator: Decimal) -> str:
    value = ratio(numerator, denominator)
    return "n/a (no equity)" if value is None else pct(value)
