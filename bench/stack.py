"""The processes `cdb up` runs, started by `cdb up`'s own code.

`BenchStack` is app.supervisor.Stack with a filter on `start_child`: `Stack.start()`
migrates the database, writes the logins and builds every child's argv and environment
exactly as `cdb up` does (worker: `celery -A workers worker -Q market_data,signals,risk,
execution -c N -n cdb@%h`; web: gunicorn with 2 workers and the shared metrics folder …);
the bench keeps the argv of every child and spawns only those a section needs: never the
simulator (the bench runs its own SimulatorServer), Flower or `cdb stream` (whose tick-driven
runs would interleave with the bench's), nor a private redis-server. The children's output
goes to a log file in the bench folder, at the LOG_LEVEL `cdb up` uses, so stderr carries
only progress.

The children see only the settings the bench gives them (plus the defaults): every inherited
variable that names a setting, and every CDB_* variable, is removed, and no .env is read.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from celery import Celery

import celeryconfig
from app.config import Settings, load_settings
from app.supervisor import Stack, StackError, free_port
from bench.errors import BenchError

READY_SECONDS = 90
ROOT = Path(__file__).resolve().parent.parent  # the checkout, where `bench` is importable
STOP_SECONDS = 20


SETTING_VARIABLES = frozenset(name.upper() for name in Settings.model_fields)


def child_environment(values: Mapping[str, str], folder: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in SETTING_VARIABLES
        and not key.startswith("CDB_")
        and key != "PROMETHEUS_MULTIPROC_DIR"
    }
    env["CDB_ENV_FILE"] = str(folder / "no.env")  # never created: no .env is read
    env["STATE_DIR"] = str(folder / "state")
    env["WEB_PORT"] = str(free_port())
    env["FLOWER_PORT"] = str(free_port())
    env.update(values)
    return env


@contextlib.contextmanager
def patched_environ(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def stderr_to(path: Path | None) -> Iterator[None]:
    """File descriptor 2 (what children inherit) goes to `path` while spawning."""
    if path is None:
        yield
        return
    saved = os.dup(2)
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.dup2(log_fd, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(log_fd)


@dataclass
class BenchStack(Stack):
    wanted: frozenset[str] = frozenset({"worker"})
    log_path: Path | None = None
    argvs: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)

    def start_child(self, name: str, argv: list[str], infrastructure: bool = False, **env: str):  # type: ignore[override]
        self.argvs[name] = (argv, env)
        if infrastructure:  # a private redis-server: the bench measures the Redis it was given
            raise StackError(f"`cdb up` would start {name} here; the bench does not")
        if name not in self.wanted:
            return None
        with stderr_to(self.log_path):
            return super().start_child(name, argv, infrastructure, **env)

    def spawn_later(self, name: str):  # type: ignore[no-untyped-def]
        """Start a child whose argv `Stack.start()` built but that was left out."""
        argv, env = self.argvs[name]
        self.wanted = self.wanted | {name}
        with stderr_to(self.log_path):
            return super().start_child(name, argv, False, **env)

    def child(self, name: str):  # type: ignore[no-untyped-def]
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(name)


@dataclass
class Running:
    """A started stack with what a section needs to talk to it."""

    stack: BenchStack
    settings: Settings
    env: dict[str, str]
    celery: Celery
    log_path: Path

    @property
    def worker_pid(self) -> int:
        process = self.stack.child("worker").process
        assert process is not None
        return process.pid

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def check_alive(self, name: str = "worker") -> None:
        child = self.stack.child(name)
        if not child.running:
            code = child.process.poll() if child.process else None
            raise BenchError(
                f"the {name} exited (code {code}) during the bench; its log is {self.log_path}"
            )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.celery.close()
        self.stack.stop("stopped")

    @contextlib.contextmanager
    def other_worker(self, app_module: str, prefix: str, **env: str) -> Iterator[Any]:
        """A worker of another Celery app, with the stack worker's argv (-A swapped, its own
        node name) and environment plus `env`, on its own key prefix; stopped afterwards."""
        argv, worker_env = self.stack.argvs["worker"]
        argv = list(argv)
        argv[argv.index("-A") + 1] = app_module
        argv[argv.index("-n") + 1] = f"{app_module}@%h"
        # From the checkout, whatever folder the bench runs in (Celery imports -A from there).
        argv[argv.index("celery") + 1 : argv.index("celery") + 1] = ["--workdir", str(ROOT)]
        with stderr_to(self.log_path):
            child = Stack.start_child(
                self.stack, app_module, argv, **worker_env, REDIS_KEY_PREFIX=prefix, **env
            )
        try:
            yield child
        finally:
            child.process.terminate()
            with contextlib.suppress(Exception):
                child.process.wait(STOP_SECONDS)
            child.kill_group()
            self.stack.children.remove(child)


def client_app(settings: Settings) -> Celery:
    """A Celery app configured like the workers' (broker, prefix, routes), to send tasks."""
    app = Celery("cdb-bench", set_as_current=False)
    app.config_from_object(celeryconfig)
    app.conf.update(celeryconfig.from_settings(settings))
    return app


def start_stack(
    values: Mapping[str, str],
    folder: Path,
    children: frozenset[str] = frozenset({"worker"}),
    concurrency: int = 2,
) -> Running:
    """Start the chosen `cdb up` children with these settings; wait until they answer."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = child_environment(values, folder)
    log_path = folder / "children.log"
    with patched_environ(env):
        settings = load_settings()
        stack = BenchStack(settings, False, 0, concurrency, wanted=children, log_path=log_path)
        try:
            stack.start()
        except StackError as exc:
            stack.stop("failed")
            raise BenchError(str(exc)) from None
        except BaseException:
            stack.stop("failed")
            raise
    running = Running(stack, settings, env, client_app(settings), log_path)
    try:
        if "worker" in children:
            wait_for_worker(running)
        if "web" in children:
            wait_for_web(running)
    except BaseException:
        running.stop()
        raise
    return running


def wait_for_worker(running: Running, seconds: float = READY_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        running.check_alive("worker")
        if running.celery.control.ping(timeout=0.5):
            return
    raise BenchError(
        f"the worker did not answer a ping within {seconds:.0f} s; its log is {running.log_path}"
    )


def wait_for_web(running: Running, seconds: float = READY_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        running.check_alive("web")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{running.web_url}/health/live", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise BenchError(
        f"the web app did not answer /health/live within {seconds:.0f} s; its log is "
        f"{running.log_path}"
    )
