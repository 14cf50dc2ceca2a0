"""The streamer's pure parts, part 1: the shard hash, shard specs and the connection plan."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.stream.shards import (
    Shard,
    parse_shard,
    plan_connections,
    shard_of,
    symbols_per_connection,
)

pytestmark = pytest.mark.unit

symbols = st.sets(st.from_regex(r"[A-Z0-9]{2,12}USDT", fullmatch=True), max_size=80)


def test_shard_hash_is_crc32_and_stable_across_processes() -> None:
    # Known values: a change of the hash would move every symbol to another streamer.
    assert [shard_of(s, 4) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT")] == [3, 0, 0, 2]
    code = "from app.stream.shards import shard_of; print(shard_of('BTCUSDT', 7))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}  # Python's str hash would differ
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(shard_of("BTCUSDT", 7))


@given(symbols, st.integers(1, 8))
def test_every_symbol_has_exactly_one_shard(names: set[str], n: int) -> None:
    shards = [Shard(i, n) for i in range(n)]
    for name in names:
        assert sum(shard.owns(name) for shard in shards) == 1


def test_only_shard_zero_carries_the_mini_tickers() -> None:
    assert Shard(0, 3).carries_mini_tickers
    assert not Shard(1, 3).carries_mini_tickers


@pytest.mark.parametrize(
    ("text", "expected"), [("0/1", Shard(0, 1)), ("2/4", Shard(2, 4)), (" 1/2 ", Shard(1, 2))]
)
def test_parse_shard(text: str, expected: Shard) -> None:
    assert parse_shard(text) == expected
    assert str(expected) == text.strip()


@pytest.mark.parametrize("text", ["", "1", "a/b", "2/2", "0/0", "-1/2", "1/2/3"])
def test_parse_shard_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="/"):
        parse_shard(text)


def test_three_channels_a_symbol_so_ten_symbols_a_connection() -> None:
    assert symbols_per_connection(30) == 10
    assert symbols_per_connection(2) == 1


@settings(max_examples=100)
@given(symbols, symbols, st.integers(1, 10))
def test_plan_is_bounded_complete_and_keeps_symbols_in_place(
    first: set[str], second: set[str], per: int
) -> None:
    before = plan_connections({}, first, per)
    after = plan_connections(before, second, per)
    for plan, wanted in ((before, first), (after, second)):
        assert all(0 < len(slot) <= per for slot in plan.values())
        assert set().union(*plan.values()) == wanted if wanted else plan == {}
        assert sum(len(slot) for slot in plan.values()) == len(wanted)  # no symbol twice
    # No more connections than needed, plus at most the ones not worth folding.
    assert len(before) == -(-len(first) // per)
    moved = [
        s
        for i, slot in after.items()
        for s in slot
        if s in first and i in before and s not in before[i]
    ]
    folded = set(before) - set(after)
    # A symbol only moves when its connection was folded away.
    assert all(any(s in before[i] for i in folded) for s in moved)


def test_plan_fills_free_room_then_opens_connections_then_folds() -> None:
    plan = plan_connections({}, [f"S{i:02d}USDT" for i in range(25)], 10)
    assert [len(s) for s in plan.values()] == [10, 10, 5]
    # Symbols leave the first connection: new ones fill its room first.
    kept = (set(plan[0]) - {"S00USDT", "S01USDT"}) | set(plan[1]) | set(plan[2])
    plan2 = plan_connections(plan, kept | {"NEW1USDT"}, 10)
    assert "NEW1USDT" in plan2[0] and plan2[1] == plan[1] and plan2[2] == plan[2]
    # Most symbols leave: the smallest connections fold into the ones that stay.
    plan3 = plan_connections(plan2, set(sorted(plan2[2])[:2]) | set(sorted(plan2[0])[:3]), 10)
    assert len(plan3) == 1
