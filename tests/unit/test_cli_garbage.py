"""Generated garbage for the replay loader and the CLI's argument parsing: never a traceback,
always a non-zero exit with one line on stderr, and nothing stored."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main

pytestmark = pytest.mark.unit

HEADER = {
    "type": "header",
    "format": "cdb-market-session/1",
    "interval": "1m",
    "lookback_minutes": 15,
}
T = "2026-01-01T00:00:00+00:00"
TICKER = {"run_id": 1, "symbol": "BTCUSDT", "last_price": "100", "close_time": T}
BOOK = {
    "run_id": 1,
    "symbol": "BTCUSDT",
    "best_bid": "99",
    "best_ask": "101",
    "bids": [["99", "1"]],
    "asks": [["101", "1"]],
    "fetched_at": T,
}
KLINE = {
    "symbol": "BTCUSDT",
    "interval": "1m",
    "open_time": T,
    "open": "100",
    "high": "101",
    "low": "99",
    "close": "100",
    "volume": "1",
    "close_time": "2026-01-01T00:01:00+00:00",
}
RUN = {
    "type": "run",
    "run": {"id": 1, "run_key": "k", "trigger": "beat", "status": "ok", "started_at": T},
    "tickers": [TICKER],
    "books": [BOOK],
    "klines": [KLINE],
}

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
# Values no field of the format accepts where a decimal string or a timestamp is expected.
bad_values = st.one_of(
    st.sampled_from(["abc", "-5", "1e5", "NaN", "Infinity", "", "12,5", "١٢", "9" * 50]),
    st.lists(json_leaf, max_size=2),
    st.dictionaries(st.text(max_size=4), json_leaf, max_size=2),
    st.booleans(),
)


def _lines(*records: object) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _damaged_run(where: str, field: str, value: object) -> bytes:
    run = json.loads(json.dumps(RUN))
    target = run[where][0] if where != "run" else run["run"]
    target[field] = value
    return _lines(HEADER, run)


def _removed(where: str, field: str) -> bytes:
    run = json.loads(json.dumps(RUN))
    target = run[where][0] if where != "run" else run["run"]
    del target[field]
    return _lines(HEADER, run)


garbage_files = st.one_of(
    st.binary(min_size=1, max_size=200).filter(lambda b: b.strip() != b""),  # anything at all
    json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: _lines(v)),
    st.dictionaries(st.text(max_size=6), json_values, max_size=4)
    .filter(lambda d: d.get("type") not in ("header",))
    .map(lambda d: _lines(d)),
    json_values.map(lambda v: _lines(HEADER, {"type": "run", "run": v})),
    st.builds(
        _damaged_run,
        st.just("tickers"),
        st.sampled_from(["last_price", "bid_price", "high_price", "close_time", "symbol"]),
        bad_values | st.just("0"),
    ),
    st.builds(
        _damaged_run,
        st.just("books"),
        st.sampled_from(["best_bid", "best_ask", "bids", "asks", "fetched_at"]),
        bad_values | st.just("0"),
    ),
    st.builds(
        _damaged_run,
        st.just("klines"),
        st.sampled_from(["open", "high", "low", "close", "volume", "open_time", "interval"]),
        bad_values,
    ),
    st.builds(
        _removed, st.sampled_from(["tickers", "books", "klines"]), st.sampled_from(["symbol"])
    ),
    st.builds(lambda n: _lines(HEADER, RUN)[:n], st.integers(min_value=1, max_value=120)).filter(
        lambda b: not b.endswith(b"\n")
    ),  # cut off mid-line
)


def run_cli(tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    state = tmp_path / "state"
    env = {"STATE_DIR": str(state), "DATABASE_URL": "", "CDB_ENV_FILE": str(tmp_path / "x.env")}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=True)
    return result, state


def assert_refused(result, state: Path) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code in (1, 2), (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit | None), repr(result.exception)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    assert not state.exists()  # nothing stored: not even a state folder


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=garbage_files)
def test_replay_refuses_garbage(tmp_path, content):
    path = tmp_path / "garbage.jsonl"
    path.write_bytes(content)
    result, state = run_cli(tmp_path, "replay", str(path))
    assert_refused(result, state)
    assert result.exit_code == 2


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    out = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += _commands(command, (*prefix, name))
        else:
            out.append(((*prefix, name), command))
    return out


COMMANDS = _commands(main)
INT_OPTIONS = [
    (path, option.opts[0])
    for path, command in COMMANDS
    for option in command.params
    if isinstance(option, click.Option)
    and isinstance(option.type, click.types._NumberParamTypeBase)
]
NO_ARGUMENTS = [
    path
    for path, command in COMMANDS
    if not any(isinstance(p, click.Argument) for p in command.params)
]
GROUPS = [()] + [path[:-1] for path, _ in COMMANDS if len(path) > 1]

not_a_number = st.text(min_size=1, max_size=12).filter(
    lambda t: not re.fullmatch(r"\s*[-+]?\d+(\.\d*)?\s*", t)
)
words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=12
)

garbage_argv = st.one_of(
    # an option no command has
    st.builds(
        lambda c, w: [*c[0], f"--zz{w}"], st.sampled_from(COMMANDS), st.text("abcxyz", max_size=6)
    ),
    # a number option given something else
    st.builds(lambda o, w: [*o[0], o[1], w], st.sampled_from(INT_OPTIONS), not_a_number),
    # arguments a command does not take
    st.builds(lambda c, w: [*c, "--", w], st.sampled_from(NO_ARGUMENTS), words),
    # a command that does not exist
    st.builds(
        lambda g, w: [*g, w],
        st.sampled_from(GROUPS),
        words.filter(
            lambda w: not w.startswith("-") and w not in {n for p, _ in COMMANDS for n in p}
        ),
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(argv=garbage_argv)
def test_argument_garbage_is_a_usage_error(tmp_path, argv):
    result, state = run_cli(tmp_path, *argv)
    assert_refused(result, state)
    assert result.exit_code == 2
