"""Which streamer owns a symbol, and which of its connections carries it.

A symbol belongs to shard `crc32(symbol) % n` — a stable hash, the same in every process and on
every host (Python's `hash` of a str is salted per process). Shard 0 also carries the
miniTickers channel (every symbol in one frame) on a connection of its own.

Within a shard, a symbol's three channels ride on one connection, at most
`max_subscriptions // 3` symbols a connection. `plan_connections` keeps a symbol where it is
while the watched set changes, fills free room first, and folds away a connection once the
others have room for its symbols, so a change of the set moves few subscriptions.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from app.stream.channels import SYMBOL_KINDS


@dataclass(frozen=True, slots=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= i < n and n >= 1")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def carries_mini_tickers(self) -> bool:
        return self.index == 0

    def owns(self, symbol: str) -> bool:
        return shard_of(symbol, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """ "i/n" (e.g. "0/1", "2/4") -> Shard; ValueError says what is wrong."""
    parts = str(text).strip().split("/")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"{text!r} is not i/n (e.g. 0/1, or 1/3 for the second of three)")
    return Shard(int(parts[0]), int(parts[1]))


def shard_of(symbol: str, count: int) -> int:
    """The shard of `symbol` among `count`: stable across processes, hosts and versions."""
    return zlib.crc32(symbol.encode("ascii")) % count


def symbols_per_connection(max_subscriptions: int) -> int:
    return max(1, max_subscriptions // len(SYMBOL_KINDS))


def plan_connections(
    previous: Mapping[int, Iterable[str]], wanted: Iterable[str], per_connection: int
) -> dict[int, frozenset[str]]:
    """Symbols per connection slot, at most `per_connection` each.

    Symbols keep their slot; new ones (in name order) go to the lowest slot with room, then to
    new slots (the lowest free numbers); a slot is folded into the others when they have room
    for all of it and fewer slots would do. Empty slots are dropped."""
    wanted_set = set(wanted)
    slots = {i: set(symbols) & wanted_set for i, symbols in previous.items()}
    slots = {i: s for i, s in slots.items() if s}
    placed = set().union(*slots.values()) if slots else set()
    for symbol in sorted(wanted_set - placed):
        target = next((i for i in sorted(slots) if len(slots[i]) < per_connection), None)
        if target is None:
            target = next(i for i in range(len(slots) + 1) if i not in slots)
            slots[target] = set()
        slots[target].add(symbol)
    needed = math.ceil(len(wanted_set) / per_connection)
    while len(slots) > needed:
        smallest = min(slots, key=lambda i: (len(slots[i]), -i))
        others = [i for i in sorted(slots) if i != smallest]
        room = sum(per_connection - len(slots[i]) for i in others)
        if room < len(slots[smallest]):
            break
        for symbol in sorted(slots.pop(smallest)):
            target = next(i for i in others if len(slots[i]) < per_connection)
            slots[target].add(symbol)
    return {i: frozenset(s) for i, s in sorted(slots.items())}
