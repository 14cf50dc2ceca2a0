"""The README's commands, walked as a new user walks them: a fresh `git clone`, then the run
command exactly as README.md writes it, and `scripts/bootstrap.sh` as run.sh and test.sh use it.

The clone holds what is committed (not the working tree). The run command is read from the
README, so the test fails when the README and the scripts drift apart. Only what must not
collide with other runs on this machine is set: ports, the Redis key prefix, the state folder
(plus a short market-data interval); the logins are left to `cdb up` to generate.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
RUN_MARKER = "# offline, against the built-in MEXC simulator"
# Variables of this machine's session that a new user would not have.
FOREIGN = ("MEXC_", "CDB_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")
GENERATED = ("ADMIN_PASSWORD", "FLOWER_BASIC_AUTH", "SECRET_KEY", "DATABASE_URL", "EXTRAS")


def clone(into: Path) -> Path:
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(into)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return into


def readme_command(readme: Path, marker: str) -> str:
    """The line of the fenced block under "## The two commands" that ends with `marker`."""
    text = readme.read_text(encoding="utf-8")
    match = re.search(r"^## The two commands\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, "README.md has no '## The two commands' section"
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", match.group(1), re.M | re.S):
        for line in block.splitlines():
            if line.rstrip().endswith(marker):
                return line.strip()
    raise AssertionError(f"no line ending with {marker!r} under '## The two commands'")


def user_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(FOREIGN) and key not in GENERATED
    }
    env.update(extra)
    return env


def _stat(pid: int | str) -> list[str]:
    """Fields of /proc/PID/stat after the command name: [state, ppid, pgrp, ...]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped has stopped running)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z"


def group_alive(pgid: int) -> bool:
    """Any process of the process group still running."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(entry.name)
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
                return True
    return False


class TimedOut(AssertionError):
    pass


def poll(check: Callable[[], object], timeout: float, what: str, interval: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.HTTPError, OSError, ValueError, sqlite3.Error) as exc:
            last = exc
        time.sleep(interval)
    raise TimedOut(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


# --- scripts/run.sh --mexc-sim in a fresh clone -----------------------------------------------


@dataclass
class Run:
    process: subprocess.Popen
    clone: Path
    state: Path
    web: str
    flower: str
    marker: str  # in the environment of every process of this run
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def output(self, tail: int = 40) -> str:
        # (pip's warnings about this machine's local package folders left out)
        stderr = [line for line in self.stderr if not line.startswith("WARNING: Location")]
        return "\n".join(["--- stdout", *self.stdout, "--- stderr (tail)", *stderr[-tail:]])

    def wait_for(self, check: Callable[[], object], timeout: float, what: str):  # type: ignore[no-untyped-def]
        def guarded() -> object:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the run command exited ({self.process.returncode}) while waiting for "
                    f"{what}:\n{self.output()}"
                )
            return check()

        try:
            return poll(guarded, timeout, what)
        except TimedOut as exc:
            raise TimedOut(f"{exc}\n{self.output()}") from None

    def supervisor(self) -> dict:
        return json.loads((self.state / "supervisor.json").read_text())

    def healthy(self) -> bool:
        return httpx.get(f"{self.web}/health", timeout=10).status_code == 200


def _pump(stream, lines: list[str]) -> None:  # type: ignore[no-untyped-def]
    for line in stream:
        lines.append(line.rstrip("\n"))


def _ours(marker: str) -> list[int]:
    """The processes whose environment holds `marker` (this run's unique key prefix)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "environ").read_bytes():
                    pids.append(int(entry.name))
    return pids


def _end(process: subprocess.Popen, marker: str) -> None:
    """Whatever happened, no process that this run started is left behind."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(60)
    if process.poll() is None:
        process.kill()
        process.wait(10)
    for pid in _ours(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def run(tmp_path_factory, redis_prefix) -> Iterator[Run]:
    base = tmp_path_factory.mktemp("readme-run")
    checkout = clone(base / "claire-de-binaire")
    command = readme_command(checkout / "README.md", RUN_MARKER)
    state = base / "state"
    web_port, flower_port = free_port(), free_port()
    env = user_env(
        WEB_PORT=str(web_port),
        FLOWER_PORT=str(flower_port),
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=f"{redis_prefix}readme:",
        STATE_DIR=str(state),
        MARKET_DATA_INTERVAL_SEC="5",
        MIN_QUOTE_VOLUME="0",
    )
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=checkout,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so that cleanup reaches everything
    )
    result = Run(
        process,
        checkout,
        state,
        web=f"http://127.0.0.1:{web_port}",
        flower=f"http://127.0.0.1:{flower_port}",
        marker=env["REDIS_KEY_PREFIX"],
    )
    for stream, lines in ((process.stdout, result.stdout), (process.stderr, result.stderr)):
        threading.Thread(target=_pump, args=(stream, lines), daemon=True).start()
    try:
        # bootstrap (pip from its cache), migrations, then every child and the web app.
        result.wait_for(
            lambda: any(line.startswith("  State folder:") for line in result.stdout),
            240,
            "the summary on stdout",
        )
        yield result
    finally:
        _end(process, result.marker)
        shutil.rmtree(base, ignore_errors=True)  # the clone and its .venv are big


def test_the_run_command_says_where_everything_is_and_runs_the_pipeline(run):
    head = "\n".join(run.stdout[:12])
    assert f"{run.web}/admin" in head, run.output()
    assert run.flower in head, run.output()
    assert f"sqlite:///{run.state / 'cdb.sqlite3'}" in head, run.output()
    assert REDIS_URL in head, run.output()
    assert str(run.state / "credentials.env") in head, run.output()
    assert not any(line.startswith("{") for line in run.stdout), "JSON logs belong on stderr"

    run.wait_for(run.healthy, 150, "/health 200")

    def pipeline_ran() -> bool:
        db = f"file:{run.state / 'cdb.sqlite3'}?mode=ro"
        with sqlite3.connect(db, uri=True, timeout=5) as conn:
            (market,) = conn.execute(
                "SELECT count(*) FROM task_runs WHERE name = 'cdb.market_data.run' "
                "AND state = 'SUCCESS'"
            ).fetchone()
            (executed,) = conn.execute(
                "SELECT count(*) FROM task_runs WHERE name = 'cdb.execution.run' "
                "AND state = 'SUCCESS'"
            ).fetchone()
        return market >= 1 and executed >= 1

    run.wait_for(pipeline_ran, 60, "a market-data run that went through execution")

    credentials = run.state / "credentials.env"
    assert credentials.stat().st_mode & 0o777 == 0o600
    assert run.state.stat().st_mode & 0o777 == 0o700
    values = dict(line.split("=", 1) for line in credentials.read_text().splitlines())
    assert set(values) >= {"ADMIN_PASSWORD", "FLOWER_BASIC_AUTH", "SECRET_KEY"}
    printed = "\n".join(run.stdout + run.stderr)
    for key, value in values.items():
        secret = value.partition(":")[2] if key == "FLOWER_BASIC_AUTH" else value
        assert secret not in printed, f"{key} appears in the output"
    # The logins the summary points to work.
    with httpx.Client(base_url=run.web, timeout=10) as browser:
        form = browser.get("/admin/login").text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
        assert token, form
        answer = browser.post(
            "/admin/login",
            data={
                "csrf_token": token.group(1),
                "username": "admin",
                "password": values["ADMIN_PASSWORD"],
            },
        )
        assert answer.status_code == 302, answer.text
    user, _, password = values["FLOWER_BASIC_AUTH"].partition(":")
    assert httpx.get(f"{run.flower}/api/workers", timeout=10).status_code == 401
    assert httpx.get(f"{run.flower}/api/workers", auth=(user, password), timeout=20).is_success


def test_a_crashed_child_is_restarted_and_the_system_stays_healthy(run):
    before = run.supervisor()["children"]["worker"]
    assert before["running"] and before["pid"]
    os.kill(before["pid"], signal.SIGKILL)

    def restarted() -> dict | None:
        worker = run.supervisor()["children"]["worker"]
        if worker["restarts"] == before["restarts"] + 1 and worker["running"]:
            return worker
        return None

    after = run.wait_for(restarted, 30, "the worker restarted in supervisor.json")
    assert after["pid"] != before["pid"]
    assert after["last_exit_code"] == -signal.SIGKILL
    assert after["last_restart_at"] and after["up_since"]
    poll(lambda: not group_alive(before["pid"]), 10, "the killed worker's pool processes to end")
    assert any('"child": "worker"' in line and "restarting it in" in line for line in run.stderr), (
        run.output()
    )
    run.wait_for(run.healthy, 90, "/health 200 after the restart")


def test_sigterm_stops_everything_with_exit_code_0(run):
    children = run.supervisor()["children"]
    pids = [child["pid"] for child in children.values()]
    assert set(children) >= {"mexc-sim", "worker", "beat", "web", "flower"}
    assert all(pids), children
    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(60) == 0, run.output()
    left = [pid for pid in pids if alive(pid) or group_alive(pid)]
    assert left == [], run.output()
    assert _ours(run.marker) == [], "processes of this run outlived it"
    final = run.supervisor()
    assert final["state"] == "stopped"
    assert not any(child["running"] for child in final["children"].values())


# --- scripts/bootstrap.sh in a fresh clone ------------------------------------------------------


def bootstrap(checkout: Path, how: str, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", how],
        cwd=checkout,
        env=user_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    return done, time.monotonic() - started


def frozen(checkout: Path) -> dict[str, str]:
    out = subprocess.run(
        [".venv/bin/python", "-m", "pip", "freeze", "--disable-pip-version-check"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins = (line.split("==", 1) for line in out.splitlines() if "==" in line)
    return {name.lower().replace("_", "-"): version for name, version in pins}


@pytest.fixture
def fresh_clone(tmp_path) -> Iterator[Path]:
    yield clone(tmp_path / "claire-de-binaire")
    shutil.rmtree(tmp_path, ignore_errors=True)  # the clone and its .venv are big


def test_bootstrap_installs_the_locked_versions_and_skips_pip_the_second_time(
    fresh_clone, tmp_path
):
    checkout = fresh_clone

    # Not a Python >= 3.11: one line, no .venv.
    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\necho 3.9.18\nexit 1\n")  # answers the version probe like 3.9
    old.chmod(0o755)
    no_venv = tmp_path / "python-without-venv"  # a real Python whose `-m venv` fails
    no_venv.write_text(
        '#!/bin/sh\n[ "$1" = -c ] && exec python3 "$@"\n'
        'echo "Error: ensurepip is not available" >&2\nexit 1\n'
    )
    no_venv.chmod(0o755)
    for python, says in (
        (str(old), "is 3.9.18"),
        (str(tmp_path / "missing" / "python3"), "not a Python interpreter"),
        (str(no_venv), "cannot create .venv"),
    ):
        done, _ = bootstrap(checkout, "scripts/bootstrap.sh", PYTHON=python)
        assert done.returncode == 1, (python, done.stderr)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and says in errors[0], done.stderr
        assert done.stderr.rstrip().splitlines()[-1] == errors[0]
        assert done.stdout == ""
        assert not (checkout / ".venv").exists()

    # As run.sh does it: the runtime lock.
    done, _ = bootstrap(checkout, 'EXTRAS="" source scripts/bootstrap.sh && .venv/bin/cdb --help')
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage:"), done.stdout  # pip's noise stays off stdout
    pins = frozen(checkout)
    assert pins["celery"] == "5.6.3" and pins["kombu"] == "5.6.2"
    assert "pytest" not in pins and "ruff" not in pins

    done, seconds = bootstrap(checkout, "scripts/bootstrap.sh")
    assert done.returncode == 0 and done.stdout == ""
    assert "skipping pip" in done.stderr and seconds < 10, (seconds, done.stderr)

    # As test.sh does it: the dev lock on top.
    done, _ = bootstrap(checkout, 'EXTRAS="dev" source scripts/bootstrap.sh && echo ready')
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ready\n"
    pins = frozen(checkout)
    assert pins["celery"] == "5.6.3" and pins["kombu"] == "5.6.2"
    assert {"pytest", "ruff", "ccxt"} <= set(pins)

    for extras in ("dev", ""):  # dev.lock covers run.sh too: no pip either way
        done, seconds = bootstrap(checkout, "scripts/bootstrap.sh", EXTRAS=extras)
        assert done.returncode == 0 and "skipping pip" in done.stderr, done.stderr
        assert seconds < 10
