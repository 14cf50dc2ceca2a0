"""Each symbol's newest rows, read with one index probe per symbol.

One `ORDER BY … DESC LIMIT n` per symbol, `UNION ALL`-ed, a batch of symbols per statement.
A window function or a max() over `symbol IN (…)` reads every stored row of the symbols
instead, and that grows with the history kept (ADR 0007).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import cache
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, select, union_all


@cache
def union_per_symbol(build: Callable[[BindParameter[Any]], Select[Any]], count: int) -> Any:
    """`build(symbol)` for `count` symbols, bound as symbol_0 … (see `batches`), in one
    statement. Built once per query and count."""
    parts = [select(build(bindparam(f"symbol_{i}")).subquery()) for i in range(count)]
    return parts[0] if count == 1 else union_all(*parts)


def batches(symbols: Sequence[str], size: int) -> Iterator[dict[str, str]]:
    """The symbols as the bind values of `union_per_symbol`, `size` symbols at a time."""
    for start in range(0, len(symbols), size):
        yield {f"symbol_{i}": symbol for i, symbol in enumerate(symbols[start : start + size])}
