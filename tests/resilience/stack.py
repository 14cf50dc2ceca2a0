"""One scenario's system: private Redis, a fresh database on the private PostgreSQL cluster,
the shared simulator, and the Celery workers and beats started as real subprocesses."""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from celery import Celery
from sqlalchemy import Engine, create_engine, text

import celeryconfig
from app.config import Settings
from tests.resilience.procs import Child, celery_argv, wait_until
from tests.resilience.services import PrivatePostgres, PrivateRedis

# Majors: deep books and MEXC's own steps, so orders pass the exchange minimums; the
# scenarios below give them the moves that make the momentum strategy buy and sell.
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")


@dataclass(frozen=True)
class Secrets:
    redis_password: str
    postgres_password: str
    admin_password: str
    secret_key: str
    flower_password: str

    @classmethod
    def generate(cls) -> Secrets:
        def one(tag: str) -> str:
            return f"rsec{tag}{uuid.uuid4().hex}"

        return cls(one("redis"), one("pg"), one("admin"), one("key"), one("flower"))

    @property
    def flower_basic_auth(self) -> str:
        return f"flower:{self.flower_password}"

    def values(self) -> dict[str, str]:
        return {
            "REDIS_PASSWORD": self.redis_password,
            "POSTGRES_PASSWORD": self.postgres_password,
            "ADMIN_PASSWORD": self.admin_password,
            "SECRET_KEY": self.secret_key,
            "FLOWER_BASIC_AUTH": self.flower_password,
        }


def base_env(exclude_settings: bool = True) -> dict[str, str]:
    """This process's environment without anything the settings would read."""
    names = {name.upper() for name in Settings.model_fields}
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MEXC_", "CDB_")) and not (exclude_settings and k in names)
    }


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass
class Stack:
    name: str
    redis: PrivateRedis
    pg: PrivatePostgres
    database: str
    sim_url: str
    secrets: Secrets
    folder: Path
    settings: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    _engine: Engine | None = None
    _celery: Celery | None = None
    _node: int = 0

    # --- configuration -----------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        env = base_env()
        env.update(
            DATABASE_URL=self.pg.url(self.database, with_password=False, driver=False),
            POSTGRES_PASSWORD=self.secrets.postgres_password,
            REDIS_URL=self.redis.url,
            ADMIN_PASSWORD=self.secrets.admin_password,
            SECRET_KEY=self.secrets.secret_key,
            FLOWER_BASIC_AUTH=self.secrets.flower_basic_auth,
            MEXC_BASE_URL=self.sim_url,
            STATE_DIR=str(self.folder / "state"),
            CDB_ENV_FILE=str(self.folder / "no.env"),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.settings)
        return env

    def setting(self, name: str) -> str:
        return self.env[name]

    @property
    def stale_sec(self) -> int:
        return int(self.setting("DATA_STALE_TIMEOUT_SEC"))

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(
                self.pg.url(self.database), pool_pre_ping=True, pool_size=2, max_overflow=2
            )
        return self._engine

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql), params).mappings()]

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    @property
    def celery(self) -> Celery:
        """A Celery app configured like the workers', for sending tasks and raw messages."""
        if self._celery is None:
            app = Celery("resilience-client")
            app.config_from_object(celeryconfig)
            app.conf.update(
                broker_url=self.redis.url,
                broker_transport_options={"visibility_timeout": celeryconfig.VISIBILITY_TIMEOUT},
                broker_connection_retry_on_startup=True,
                broker_connection_max_retries=3,
            )
            self._celery = app
        return self._celery

    # --- processes ----------------------------------------------------------------------

    def start_worker(
        self,
        crash_points: str | None = None,
        concurrency: int = 2,
        queues: str = ",".join(celeryconfig.QUEUES),
        wait: bool = True,
        **extra_env: str,
    ) -> Child:
        self._node += 1
        env = self.env | extra_env
        if crash_points:
            env["CDB_CRASH_POINTS"] = crash_points
        child = Child(
            celery_argv(
                "worker", "-Q", queues, "-c", str(concurrency),
                "-n", f"{self.name}{self._node}@%h", "--loglevel", "INFO",
                "--without-mingle", "--without-gossip",
            ),
            env,
            f"worker{self._node}",
            self.folder,
        )  # fmt: skip
        self.children.append(child)
        if wait:
            child.wait_for("ready", timeout=60)
        return child

    def start_beat(self, tag: str = "", **extra_env: str) -> Child:
        self._node += 1
        env = self.env | extra_env
        if tag:  # a beat on "another machine": its own schedule file
            state = self.folder / f"state-{tag}"
            state.mkdir(exist_ok=True)
            env["STATE_DIR"] = str(state)
        child = Child(
            celery_argv("beat", "--loglevel", "INFO"), env, f"beat{self._node}", self.folder
        )
        self.children.append(child)
        return child

    def replace_worker(self, dead: Child, **kwargs: Any) -> Child:
        """What a supervisor does when a worker died: end its orphans, start a new one."""
        dead.kill_group()
        return self.start_worker(**kwargs)

    def logs(self) -> str:
        return "\n".join(child.text() for child in self.children)

    def close(self) -> None:
        for child in reversed(self.children):
            with contextlib.suppress(Exception):
                child.stop(hard=True)
        if self._celery is not None:
            self._celery.close()
        if self._engine is not None:
            self._engine.dispose()

    # --- driving the pipeline --------------------------------------------------------------

    def send_market_data(self, trigger: str = "manual") -> str:
        task_id = str(uuid.uuid4())
        self.celery.send_task(
            celeryconfig.MARKET_DATA_TASK, kwargs={"trigger": trigger}, task_id=task_id
        )
        return task_id

    def run_done(self, task_id: str) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM market_data_runs WHERE run_key = :k", k=task_id)
        return found[0] if found and found[0]["execution_done_at"] is not None else None

    def next_execution_after(self, since: float) -> float | None:
        """When the first run started after `since` (epoch s) got through execution."""
        done = self.scalar(
            "SELECT min(execution_done_at) FROM market_data_runs WHERE started_at > :t "
            "AND execution_done_at IS NOT NULL",
            t=utc(since),
        )
        return done.timestamp() if done is not None else None

    def wait_recovered(self, since: float, timeout: float, what: str) -> float:
        """Seconds from `since` to the next execution_done_at of a run started after it."""
        done = wait_until(lambda: self.next_execution_after(since), timeout, what, every=0.5)
        return round(done - since, 2)

    def executed_runs(self) -> int:
        return self.scalar(
            "SELECT count(*) FROM market_data_runs WHERE execution_done_at IS NOT NULL"
        )

    def trades(self) -> dict[str, int]:
        found = self.rows("SELECT side, count(*) AS n FROM fills GROUP BY side")
        return {r["side"]: r["n"] for r in found}

    def redis_keys(self) -> int:
        client = self.redis.client()
        try:
            return client.dbsize()
        finally:
            client.close()

    def redis_memory_kb(self) -> int:
        client = self.redis.client()
        try:
            return client.info("memory")["used_memory"] // 1024
        finally:
            client.close()

    def queue_lengths(self) -> dict[str, int]:
        client = self.redis.client()
        try:
            return {q: client.llen(q) for q in celeryconfig.QUEUES}
        finally:
            client.close()


class Sender:
    """Fast mode beside beat: sends a market-data run as soon as the previous one it sent is
    through execution (or after `patience` seconds, when a fault swallowed it)."""

    def __init__(self, stack: Stack, patience: float = 8.0) -> None:
        self.stack = stack
        self.patience = patience
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="sender")

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # the broker may be away: try again
                task_id = self.stack.send_market_data(trigger="manual")
                self.sent += 1
                deadline = time.monotonic() + self.patience
                while time.monotonic() < deadline and not self._stop.is_set():
                    if self.stack.run_done(task_id):
                        break
                    time.sleep(0.1)
            self._stop.wait(0.1)

    def __enter__(self) -> Sender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(15)


class MarketDriver:
    """Moves the watched markets so the momentum strategy trades: each step takes the next
    symbol to a rally (a jump up inside the current candle: a buy) or, when it rallied last,
    to a drop below its stop (a stop-loss exit, or the momentum exit). Books stay deep so only
    these moves drive the risk layers."""

    RALLY = "1.012"
    DROP = "0.985"

    def __init__(self, sim_url: str, symbols: tuple[str, ...] = SYMBOLS, period: float = 2.5):
        self.sim_url = sim_url
        self.symbols = symbols
        self.period = period
        self.moves = 0
        self._up: dict[str, bool] = dict.fromkeys(symbols, False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random(7)

    def set(self, symbol: str, factor: str) -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(
                f"{self.sim_url}/_sim/scenarios",
                json={"symbol": symbol, "price_factor": factor, "depth_factor": "50"},
                timeout=5,
            ).raise_for_status()
            self.moves += 1

    def flat(self) -> None:
        for symbol in self.symbols:
            self.set(symbol, "1")
            self._up[symbol] = False

    def step(self) -> None:
        symbol = self._rng.choice(self.symbols)
        self._up[symbol] = not self._up[symbol]
        self.set(symbol, self.RALLY if self._up[symbol] else self.DROP)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.step()

    def __enter__(self) -> MarketDriver:
        self.flat()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="market-driver")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


@contextlib.contextmanager
def driven(sim_url: str, **kwargs: Any) -> Iterator[MarketDriver]:
    with MarketDriver(sim_url, **kwargs) as driver:
        yield driver
