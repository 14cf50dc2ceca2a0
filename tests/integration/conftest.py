"""Real services for integration tests: simulator, migrated PostgreSQL, Celery processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from app import migrate
from app.exchange.simulator import SimulatorServer
from tests.conftest import REDIS_URL, create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
TABLES = (
    "market_data_runs, ticker_snapshots, klines, book_snapshots, markets, signals, "
    "risk_decisions, orders, fills, positions, equity_snapshots, alerts, task_runs, portfolios"
)


class Process:
    """A child process whose combined output is collected for assertions and debugging."""

    def __init__(self, argv: list[str], env: dict[str, str], name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, fragment: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(fragment in line for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{self.name} never said {fragment!r}:\n" + self.output())

    def output(self) -> str:
        return "\n".join(self.lines[-80:])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


@pytest.fixture(params=["postgresql", "sqlite"])
def backend_url(request, empty_pg_url, tmp_path) -> str:
    """An empty, migrated database on each backend: a throwaway PostgreSQL database, then a
    SQLite file."""
    url = empty_pg_url if request.param == "postgresql" else f"sqlite:///{tmp_path}/cdb.sqlite3"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer(n_symbols=60, seed=7)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    url = create_database("mod" + str(os.getpid())[-4:] + str(time.monotonic_ns())[-5:])
    migrate.upgrade(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def engine(pg_url):
    engine = create_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clean(engine, sim) -> None:
    """Empty tables and a fault-free simulator before each test."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    httpx.post(f"{sim.url}/_sim/reset").raise_for_status()


@pytest.fixture(scope="module")
def stack_env(pg_url, sim, redis_prefix, tmp_path_factory) -> dict[str, str]:
    """The environment a worker/beat of this test module runs with."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEXC_", "CDB_"))}
    env.update(
        DATABASE_URL=pg_url,
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=f"{redis_prefix}{os.getpid()}-{time.monotonic_ns()}:",
        MEXC_BASE_URL=sim.url,
        MEXC_TIMEOUT_SEC="2",
        MEXC_MAX_RETRIES="3",
        TOP_N="5",
        MIN_QUOTE_VOLUME="0",
        INTERVAL="1m",
        LOOKBACK_MINUTES="15",
        DATA_STALE_TIMEOUT_SEC="30",
        MARKET_DATA_INTERVAL_SEC="5",
        STATE_DIR=str(tmp_path_factory.mktemp("state")),
        LOG_LEVEL="INFO",
    )
    return env


@pytest.fixture(scope="module")
def start_process(stack_env) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(*celery_args: str, env: dict[str, str] | None = None, name: str = "") -> Process:
        argv = [sys.executable, "-m", "celery", "-A", "workers", *celery_args]
        process = Process(argv, env or stack_env, name or celery_args[0])
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def start_all_queue_worker(start_process, node: str, concurrency: int = 1) -> Process:
    """A worker consuming every stage's queue, ready before it is returned."""
    import celeryconfig

    process = start_process(
        "worker",
        "-Q",
        ",".join(celeryconfig.QUEUES),
        "-c",
        str(concurrency),
        "-n",
        f"{node}@%h",
        "--loglevel",
        "INFO",
    )
    process.wait_for("ready")
    return process


@pytest.fixture(scope="module")
def worker(start_process) -> Process:
    process = start_process(
        "worker", "-Q", "market_data", "-c", "2", "-n", "itest@%h", "--loglevel", "INFO"
    )
    process.wait_for("ready")
    return process


@pytest.fixture(scope="module")
def celery_client(stack_env):
    """A Celery app configured exactly like the worker's, for sending tasks."""
    from app import create_app
    from app.config import load_settings

    keys = ("REDIS_URL", "REDIS_KEY_PREFIX", "DATABASE_URL", "STATE_DIR")
    settings = load_settings(env_file=None, **{k.lower(): stack_env[k] for k in keys})
    celery = create_app(settings).extensions["celery"]
    yield celery
    celery.close()


def wait_for_run(engine, run_key: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            row = (
                conn.execute(
                    text("SELECT * FROM market_data_runs WHERE run_key = :k"), {"k": run_key}
                )
                .mappings()
                .first()
            )
        if row is not None and row["status"] != "running":
            return dict(row)
        time.sleep(0.2)
    raise AssertionError(f"run {run_key} did not finish within {timeout}s")
