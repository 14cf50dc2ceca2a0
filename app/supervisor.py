"""`cdb up`: the whole system on one machine, started and stopped together.

Children: [private redis-server] [mexc-sim] worker(s) beat web flower. Ctrl-C or SIGTERM
stops them all (Celery gets a warm shutdown); if one dies, the rest are stopped too.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

from app import migrate
from app.config import Settings, redact_url

log = logging.getLogger(__name__)

QUEUES = "market_data,signals,risk,execution"
STOP_GRACE_SECONDS = 20
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class Child:
    name: str
    process: subprocess.Popen


class StackError(RuntimeError):
    """The stack cannot start; the message says what to do."""


def broker_problem(url: str) -> str | None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return str(exc)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _credentials(settings: Settings, env: dict[str, str]) -> None:
    """Admin and Flower logins: from the environment, or generated once into the state folder
    (mode 600) so they are never printed or logged."""
    path = settings.state_dir / "credentials.env"
    stored: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            stored[key] = value
    wanted = {
        "ADMIN_PASSWORD": settings.admin_password,
        "FLOWER_BASIC_AUTH": settings.flower_basic_auth,
        "SECRET_KEY": settings.secret_key,
    }
    for key, secret in wanted.items():
        if secret is not None:
            continue
        if key not in stored:
            token = secrets.token_urlsafe(18)
            stored[key] = f"flower:{token}" if key == "FLOWER_BASIC_AUTH" else token
        env[key] = stored[key]
    if stored:
        path.write_text("".join(f"{k}={v}\n" for k, v in stored.items()))
        path.chmod(0o600)
        log.info("generated logins are in %s (ADMIN_USERNAME=%s)", path, settings.admin_username)


def _private_redis(settings: Settings, start) -> None:  # type: ignore[no-untyped-def]
    """Start a redis-server (data in the state folder) for REDIS_URL when nothing answers."""
    url = settings.broker_url
    parts = urlsplit(url)
    binary = shutil.which("redis-server")
    if parts.hostname not in LOCAL_HOSTS or binary is None:
        raise StackError(
            f"Redis at {redact_url(url)} does not answer. Start it, set REDIS_URL to one that "
            "runs, or install redis-server (Debian/Ubuntu: `apt-get install redis-server`; "
            "macOS: `brew install redis`) and `cdb up` starts a private one."
        )
    port = parts.port or 6379
    folder = (settings.state_dir / "redis").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(folder),
        "--appendonly",
        "yes",
        "--save",
        "",
        "--protected-mode",
        "yes",
    ]
    if parts.password:
        argv += ["--requirepass", parts.password]
    start("redis-server", argv)
    deadline = time.monotonic() + 15
    while broker_problem(url):
        if time.monotonic() > deadline:
            raise StackError(f"the private redis-server on port {port} did not come up")
        time.sleep(0.2)


def run_local_stack(settings: Settings, use_sim: bool, sim_symbols: int, concurrency: int) -> int:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, STATE_DIR=str(settings.state_dir.resolve()))
    children: list[Child] = []
    stopping = False

    def start(name: str, argv: list[str], **extra_env: str) -> None:
        children.append(Child(name, subprocess.Popen(argv, env={**env, **extra_env})))
        log.info("started %s", name, extra={"child": name, "pid": children[-1].process.pid})

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        log.info("stopping on %s", signal.Signals(signum).name)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    try:
        if broker_problem(settings.broker_url):
            _private_redis(settings, start)
        migrate.upgrade(settings.sqlalchemy_url)
        log.info("database ready", extra={"database": redact_url(settings.sqlalchemy_url)})
        _credentials(settings, env)
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
    except StackError as exc:
        log.critical(str(exc))
        _stop(children)
        return 1

    celery = [sys.executable, "-m", "celery", "-A", "workers", "--quiet"]  # no banner
    level = settings.log_level
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
            level,
        ],
    )
    start("beat", [*celery, "beat", "--loglevel", level])
    # Gunicorn's worker processes share their HTTP metrics through this folder.
    multiproc = settings.state_dir.resolve() / "prometheus-multiproc"
    shutil.rmtree(multiproc, ignore_errors=True)
    multiproc.mkdir(parents=True)
    start(
        "web",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{settings.web_port}",
            "--workers",
            "2",
            "--config",
            "python:app.gunicorn_conf",
            "app.wsgi:app",
        ],
        PROMETHEUS_MULTIPROC_DIR=str(multiproc),
    )
    # Flower reads FLOWER_BASIC_AUTH and FLOWER_PORT from the environment: no secret in `ps`.
    start("flower", [*celery, "flower", "--address=127.0.0.1", f"--port={settings.flower_port}"])
    web = f"http://127.0.0.1:{settings.web_port}"
    log.info(
        "Claire de Binaire is up: admin %s/admin, health %s/health, metrics %s/metrics, "
        "Flower http://127.0.0.1:%s, market data from %s",
        web,
        web,
        web,
        settings.flower_port,
        env.get("MEXC_BASE_URL", settings.mexc_base_url),
    )

    exit_code = 0
    while not stopping:
        for child in children:
            code = child.process.poll()
            if code is not None:
                log.error("%s exited with %s; stopping the rest", child.name, code)
                exit_code, stopping = code or 1, True
                break
        time.sleep(0.5)
    _stop(children)
    return exit_code


def _stop(children: list[Child]) -> None:
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


def _wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise StackError(f"nothing listens on port {port} after {timeout}s")
