"""Percentiles and summaries of latency samples."""

from __future__ import annotations

import math
from collections.abc import Sequence

PERCENTILES = (50, 95, 99)


def percentile(samples: Sequence[float], pct: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default); None when empty."""
    if not samples:
        return None
    ordered = sorted(samples)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def summary(samples: Sequence[float], digits: int = 1) -> dict[str, float | int | None]:
    """n, p50, p95, p99, max, mean — rounded for people; None for an empty sample."""
    result: dict[str, float | int | None] = {"n": len(samples)}
    for pct in PERCENTILES:
        value = percentile(samples, pct)
        result[f"p{pct}"] = None if value is None else round(value, digits)
    result["max"] = round(max(samples), digits) if samples else None
    result["mean"] = round(sum(samples) / len(samples), digits) if samples else None
    return result


def ratio(numerator: float | None, denominator: float | None, digits: int = 2) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, digits)
