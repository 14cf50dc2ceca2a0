"""`cdb up`: the pipeline's processes on one machine, started and stopped together."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import redis

from app import migrate
from app.config import Settings, redact_url

log = logging.getLogger(__name__)

QUEUES = "market_data,signals,risk,execution"
STOP_GRACE_SECONDS = 20


@dataclass
class Child:
    name: str
    process: subprocess.Popen


def broker_problem(settings: Settings) -> str | None:
    try:
        client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return (
            f"Redis at {redact_url(settings.broker_url)} does not answer ({exc}). Start Redis "
            "(e.g. `redis-server`, or `apt-get install redis-server`) or set REDIS_URL."
        )
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_local_stack(settings: Settings, use_sim: bool, sim_symbols: int, concurrency: int) -> int:
    problem = broker_problem(settings)
    if problem:
        log.critical(problem)
        return 1
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.sqlalchemy_url)
    log.info("database ready", extra={"database": redact_url(settings.sqlalchemy_url)})

    env = dict(os.environ)
    children: list[Child] = []
    stopping = False

    def start(name: str, argv: list[str]) -> None:
        children.append(Child(name, subprocess.Popen(argv, env=env)))
        log.info("started %s", name, extra={"child": name, "pid": children[-1].process.pid})

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        log.info("stopping on %s", signal.Signals(signum).name)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    if use_sim:
        port = free_port()
        start(
            "mexc-sim",
            [
                sys.executable,
                "-m",
                "app.cli",
                "mexc-sim",
                "--port",
                str(port),
                "--symbols",
                str(sim_symbols),
            ],
        )
        env["MEXC_BASE_URL"] = f"http://127.0.0.1:{port}"
        _wait_for_port(port)
    log.info("market data from %s", env.get("MEXC_BASE_URL", settings.mexc_base_url))

    celery = [sys.executable, "-m", "celery", "-A", "workers"]
    start(
        "worker",
        [
            *celery,
            "worker",
            "-Q",
            QUEUES,
            "-c",
            str(concurrency),
            "-n",
            "cdb@%h",
            "--loglevel",
            settings.log_level,
        ],
    )
    start("beat", [*celery, "beat", "--loglevel", settings.log_level])

    exit_code = 0
    while not stopping:
        for child in children:
            code = child.process.poll()
            if code is not None:
                log.error("%s exited with %s; stopping the rest", child.name, code)
                exit_code, stopping = code or 1, True
                break
        time.sleep(0.5)

    for child in reversed(children):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in reversed(children):
        try:
            child.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in time; killing it", child.name)
            child.process.kill()
            child.process.wait()
    log.info("all processes stopped")
    return exit_code


def _wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")
