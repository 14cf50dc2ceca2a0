"""Every error a user can cause or meet ends in one line on stderr with a documented exit code
(1: the work could not be done, 2: the request is wrong) and leaves nothing half-done."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.exchange.simulator import SimulatorServer
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration

CLOSED_PORT = "1"  # nothing listens on port 1: a service that is down


def cdb(*args: str, state: Path, cwd: Path | None = None, **env: str):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MEXC_", "CDB_"))}
    full.pop("DATABASE_URL", None)
    full.update({"STATE_DIR": str(state), "REDIS_URL": REDIS_URL, **env})
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def fingerprint(state: Path) -> dict[str, int] | None:
    """Row counts of every table of the state folder's database (None: there is none)."""
    path = state / "cdb.sqlite3"
    if not path.exists():
        return None
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


@pytest.fixture(scope="module")
def sim():
    with SimulatorServer(n_symbols=30, seed=4) as server:
        yield server


@pytest.fixture(scope="module")
def session_file(sim, tmp_path_factory) -> Path:
    """A real exported session with one run, to damage in the rows below."""
    state = tmp_path_factory.mktemp("exported")
    assert cdb("db", "upgrade", state=state).returncode == 0
    env = {"MEXC_BASE_URL": sim.url, "TOP_N": "2", "MIN_QUOTE_VOLUME": "0"}
    run = cdb("pipeline", "run-once", state=state, **env)
    assert run.returncode == 0, run.stderr
    path = state / "session.jsonl"
    assert cdb("export", str(path), state=state).returncode == 0
    return path


@pytest.fixture
def state(tmp_path) -> Path:
    """A state folder with a migrated database and one recorded task run."""
    folder = tmp_path / "state"
    assert cdb("db", "upgrade", state=folder).returncode == 0
    with sqlite3.connect(folder / "cdb.sqlite3") as conn:
        conn.execute(
            "INSERT INTO task_runs (task_id, name, args, kwargs, state, started_at, attempts) "
            "VALUES ('t-1', 'cdb.signals.run', '[1]', '{}', 'SUCCESS', "
            "'2026-01-01 00:00:00', 1)"
        )
    return folder


def damaged(session: Path, tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    lines = session.read_text().splitlines()
    run = json.loads(lines[2])
    change(run)
    path = tmp_path / "damaged.jsonl"
    path.write_text("\n".join([*lines[:2], json.dumps(run)]) + "\n")
    return path


def _price(field: str, value: str):  # type: ignore[no-untyped-def]
    def change(run: dict) -> None:
        run["tickers"][0][field] = value

    return change


# (name, argv builder, extra env, exit code, words the one line must hold)
ROWS = [
    (
        "redis down: enqueue a run",
        lambda s, f: ["market-data", "run", "--enqueue"],
        {"REDIS_URL": f"redis://127.0.0.1:{CLOSED_PORT}/0"},
        1,
        ["cannot reach the broker", "REDIS_URL"],
    ),
    (
        "redis down: re-run a task",
        lambda s, f: ["tasks", "rerun", "t-1"],
        {"REDIS_URL": f"redis://127.0.0.1:{CLOSED_PORT}/0"},
        1,
        ["cannot reach the broker"],
    ),
    (
        "database down",
        lambda s, f: ["portfolio"],
        {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{CLOSED_PORT}/nothing"},
        1,
        ["cannot use the database", "DATABASE_URL"],
    ),
    (
        "database down for cdb up",
        lambda s, f: ["up"],
        {
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{CLOSED_PORT}/nothing",
            "WEB_PORT": "1",
        },
        1,
        ["database"],
    ),
    ("unknown revision down", lambda s, f: ["db", "downgrade", "0099"], {}, 2, ["0099", "known"]),
    ("unknown revision up", lambda s, f: ["db", "upgrade", "nonsense"], {}, 2, ["nonsense"]),
    ("bad settings", lambda s, f: ["portfolio"], {"TOP_N": "many"}, 1, ["TOP_N"]),
    ("unknown option", lambda s, f: ["orders", "--colour"], {}, 2, ["--colour", "--help"]),
    ("not a number", lambda s, f: ["orders", "--limit", "ten"], {}, 2, ["--limit"]),
    ("unknown command", lambda s, f: ["portfolioo"], {}, 2, ["portfolioo"]),
    ("unknown order", lambda s, f: ["trace", "424242"], {}, 2, ["no order 424242"]),
    ("unknown task", lambda s, f: ["tasks", "rerun", "nope"], {}, 2, ["no task run nope"]),
    ("not a symbol", lambda s, f: ["explain", "btc-usdt"], {}, 2, ["not a MEXC spot symbol"]),
    ("unknown account", lambda s, f: ["portfolio", "--account", "77"], {}, 2, ["account 77"]),
    (
        "halt reason too long",
        lambda s, f: ["risk", "halt", "--reason", "x" * 600],
        {},
        2,
        ["at most 500"],
    ),
    ("reset without a terminal", lambda s, f: ["paper", "reset"], {}, 2, ["--yes"]),
    ("replay: missing file", lambda s, f: ["replay", str(s / "none.jsonl")], {}, 2, ["exist"]),
]


@pytest.mark.parametrize(
    ("argv", "env", "code", "words"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_error_is_one_line_with_its_exit_code_and_nothing_stored(
    state, session_file, argv, env, code, words
):
    before = fingerprint(state)
    proc = cdb(*argv(state, session_file), state=state, **env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    for word in words:
        assert word in lines[0]
    assert fingerprint(state) == before


REPLAY_ROWS = [
    ("binary file", lambda s, t: _write(t, b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 20), ["text"]),
    ("a JSON list", lambda s, t: _write(t, b"[1,2]\n"), ["not a JSON object"]),
    ("a run without its keys", lambda s, t: _write(t, b'{"type":"run"}\n'), ["cdb export"]),
    (
        "a price that is not a number",
        lambda s, t: damaged(s, t, _price("last_price", "abc")),
        ["last_price", "not a decimal"],
    ),
    (
        "a negative price",
        lambda s, t: damaged(s, t, _price("last_price", "-5")),
        ["not positive", "live pipeline rejects"],
    ),
    ("a crossed book", lambda s, t: damaged(s, t, _crossed), ["crossed book"]),
    ("not JSON", lambda s, t: _write(t, b'{"type": "header", "format"\n'), ["not JSON"]),
]


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "input.jsonl"
    path.write_bytes(data)
    return path


def _crossed(run: dict) -> None:
    book = run["books"][0]
    book["asks"][0][0] = "0.0001"
    book["best_ask"] = "0.0001"


@pytest.mark.parametrize(
    ("make", "words"), [row[1:] for row in REPLAY_ROWS], ids=[row[0] for row in REPLAY_ROWS]
)
def test_a_bad_replay_file_is_refused_in_one_line(state, session_file, tmp_path, make, words):
    before = fingerprint(state)
    path = make(session_file, tmp_path)
    proc = cdb("replay", str(path), state=state)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr and proc.stdout == ""
    for word in words:
        assert word in lines[0]
    assert fingerprint(state) == before


def test_the_intact_session_replays(state, session_file):
    proc = cdb("replay", str(session_file), state=state)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["runs"] == 1


def test_no_command_but_upgrade_creates_a_database(tmp_path):
    empty = tmp_path / "empty"
    for argv in (["portfolio"], ["orders"], ["db", "current"], ["db", "downgrade", "base"]):
        proc = cdb(*argv, state=empty)
        assert proc.returncode == 1, proc.stderr
        line = proc.stderr.strip()
        assert str(empty / "cdb.sqlite3") in line and "cdb db upgrade" in line
        assert not empty.exists()
    status = json.loads(cdb("status", state=empty).stdout)
    assert status["database"]["exists"] is False and not empty.exists()


def test_every_folder_uses_the_same_database(tmp_path):
    """STATE_DIR unset: the state folder is the checkout's var/, wherever cdb runs from."""
    somewhere, elsewhere = tmp_path / "a", tmp_path / "b" / "c"
    somewhere.mkdir()
    elsewhere.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIR", "DATABASE_URL")}
    env["CDB_ENV_FILE"] = str(tmp_path / "no.env")  # not the developer's own .env

    def status(cwd: Path) -> dict:
        proc = subprocess.run(
            [sys.executable, "-m", "app.cli", "status"],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    here, there = status(somewhere), status(elsewhere)
    root = Path(__file__).resolve().parents[2]
    assert here["state_dir"] == there["state_dir"] == str(root / "var")
    assert here["database"]["url"] == there["database"]["url"]
    assert not (somewhere / "var").exists() and not (elsewhere / "var").exists()


def test_a_relative_state_dir_is_taken_from_the_project_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIR", "DATABASE_URL")}
    env.update(STATE_DIR="var/relative-test", CDB_ENV_FILE=str(tmp_path / "no.env"))
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "status"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    root = Path(__file__).resolve().parents[2]
    assert json.loads(proc.stdout)["state_dir"] == str(root / "var" / "relative-test")
