"""`cdb up`'s start-up steps, in the order Stack.start runs them: the state folder, free
ports, Redis (or a private redis-server), the database, the logins, the simulator. Each
raises StackError with what is wrong and what to do."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from app import migrate
from app.config import redact_url
from app.supervisor.probes import broker_problem, free_port, listening, port_taken

if TYPE_CHECKING:
    from app.supervisor.stack import Stack

log = logging.getLogger("app.supervisor")

REDIS_WAIT_SECONDS = 15
SIM_WAIT_SECONDS = 15
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
CREDENTIALS_FILE = "credentials.env"
# The simulator and the streamer are started through the `cdb` entry point's function.
CDB = [
    sys.executable,
    "-c",
    "import sys; from app.cli import main; sys.exit(main(prog_name='cdb'))",
]


class StackError(RuntimeError):
    """The stack cannot start; the message says what is wrong and what to do."""


def one_line(text: object, limit: int = 300) -> str:
    words = " ".join(str(text).split())
    return words if len(words) <= limit else words[: limit - 3] + "..."


@dataclass
class Logins:
    credentials: Path
    admin_generated: bool = False
    flower_user: str = "flower"
    flower_generated: bool = False


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text`, mode 0600 from the first byte (temporary file + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)  # whatever the umask
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def mask_in_logs(values: list[str]) -> None:
    """Add generated secrets to what the JSON log formatter replaces with ***."""
    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        known = getattr(formatter, "secrets", None)
        if isinstance(known, list):
            formatter.secrets = sorted({*known, *values}, key=len, reverse=True)  # type: ignore[union-attr]


def redis_conf_value(value: str) -> str:
    if any(ord(ch) < 32 for ch in value):
        raise StackError("the Redis password in REDIS_URL holds control characters: change it")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def state_folder(stack: Stack) -> None:
    folder = stack.state_dir
    try:
        if not folder.exists():
            folder.mkdir(mode=0o700, parents=True)  # only the last level gets 0700
    except OSError as exc:
        raise StackError(
            f"cannot create the state folder {folder} ({exc.strerror or exc}); "
            "set STATE_DIR to a folder you can write"
        ) from None
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise StackError(
            f"the state folder {folder} is not a writable folder; "
            "set STATE_DIR to a folder you can write"
        )


def free_ports(stack: Stack) -> None:
    settings = stack.settings
    if settings.web_port == settings.flower_port:
        raise StackError(
            f"WEB_PORT and FLOWER_PORT are both {settings.web_port}: give them different ports"
        )
    for variable, port in (
        ("WEB_PORT", settings.web_port),
        ("FLOWER_PORT", settings.flower_port),
    ):
        reason = port_taken(port)
        if reason:
            raise StackError(
                f"port {port} ({variable}) is already in use on 127.0.0.1 ({reason}): stop "
                f"what listens there (another `cdb up`?) or set {variable} to a free port"
            )


def redis_ready(stack: Stack) -> None:
    url = stack.settings.broker_url
    problem = broker_problem(url)
    if problem is None:
        return
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    shown = redact_url(url)
    if listening(host, port):
        raise StackError(
            f"Redis at {shown} answers but cannot be used ({one_line(problem)}): "
            "check REDIS_URL and REDIS_PASSWORD"
        )
    if host not in LOCAL_HOSTS or parts.scheme != "redis":
        raise StackError(
            f"Redis at {shown} does not answer ({one_line(problem)}): start it or set "
            "REDIS_URL to a Redis that runs"
        )
    binary = shutil.which("redis-server")
    if binary is None:
        raise StackError(
            f"Redis at {shown} does not answer and redis-server is not installed: start "
            "a Redis, set REDIS_URL to one that runs, or install redis-server (Debian/Ubuntu: "
            "`apt-get install redis-server`; macOS: `brew install redis`) and `cdb up` "
            "starts a private one"
        )
    folder = stack.state_dir / "redis"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = [
        "# Written by `cdb up` at every start (mode 600: it holds the password).",
        "bind 127.0.0.1 -::1",  # -: only where IPv6 is there
        f"port {port}",
        f"dir {redis_conf_value(str(folder))}",
        "appendonly yes",
        'save ""',
        "protected-mode yes",
        "daemonize no",
        'logfile ""',
    ]
    if parts.password:
        lines.append(f"requirepass {redis_conf_value(unquote(parts.password))}")
    conf = folder / "redis.conf"
    write_private(conf, "\n".join(lines) + "\n")
    child = stack.start_child("redis-server", [binary, str(conf)], infrastructure=True)
    stack.wait_for(
        child,
        lambda: broker_problem(url) is None,
        REDIS_WAIT_SECONDS,
        f"the private redis-server on port {port}",
        f"its log is above; check the port in REDIS_URL and the folder {folder}",
    )
    stack.private_redis = True


def database_ready(stack: Stack) -> None:
    url = stack.settings.sqlalchemy_url
    try:
        migrate.upgrade(url)
    except Exception as exc:
        reason = getattr(exc, "orig", None) or exc
        hint = (
            f"check that {Path(url.removeprefix('sqlite:///')).parent} is a folder you can "
            "write and that the database there was made by this version (`cdb db current`)"
            if url.startswith("sqlite:///")
            else "start PostgreSQL and check DATABASE_URL (without it, `cdb up` uses the "
            "embedded SQLite in the state folder)"
        )
        raise StackError(
            f"the database {redact_url(url)} cannot be used ({type(reason).__name__}: "
            f"{one_line(reason)}): {hint}"
        ) from None
    log.info("database ready", extra={"database": redact_url(url)})


def logins(stack: Stack) -> None:
    """Admin and Flower logins: from the environment, or generated once into
    <state>/credentials.env (mode 600), so that they are never printed or logged."""
    settings = stack.settings
    path = stack.state_dir / CREDENTIALS_FILE
    stored: dict[str, str] = {}
    try:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    stored[key] = value
        wanted = {
            "ADMIN_PASSWORD": settings.admin_password,
            "FLOWER_BASIC_AUTH": settings.flower_basic_auth,
            "SECRET_KEY": settings.secret_key,
        }
        generated = []
        for key, secret in wanted.items():
            if secret is not None:
                continue
            if key not in stored:
                token = secrets.token_urlsafe(18)
                stored[key] = f"flower:{token}" if key == "FLOWER_BASIC_AUTH" else token
            stack.env[key] = stored[key]
            generated.append(key)
        if stored:
            write_private(path, "".join(f"{k}={v}\n" for k, v in stored.items()))
    except OSError as exc:
        raise StackError(
            f"cannot write the logins to {path} ({exc.strerror or exc}); "
            "set STATE_DIR to a folder you can write"
        ) from None
    mask_in_logs([stored[key] for key in generated])
    mask_in_logs([stored[key].partition(":")[2] for key in generated if ":" in stored[key]])
    flower_auth = stack.env.get("FLOWER_BASIC_AUTH") or (
        settings.flower_basic_auth.get_secret_value() if settings.flower_basic_auth else ""
    )
    stack.logins = Logins(
        path,
        admin_generated="ADMIN_PASSWORD" in generated,
        flower_user=flower_auth.partition(":")[0],
        flower_generated="FLOWER_BASIC_AUTH" in generated,
    )
    if generated:
        log.info("generated logins are in %s (ADMIN_USERNAME=%s)", path, settings.admin_username)


def simulator(stack: Stack) -> None:
    port, ws_port = free_port(), free_port()
    argv = [
        *CDB,
        "mexc-sim",
        "--port",
        str(port),
        "--ws-port",
        str(ws_port),
        "--symbols",
        str(stack.sim_symbols),
    ]
    child = stack.start_child("mexc-sim", argv, infrastructure=True)
    stack.wait_for(
        child,
        lambda: listening("127.0.0.1", port) and listening("127.0.0.1", ws_port),
        SIM_WAIT_SECONDS,
        f"the MEXC simulator on ports {port} and {ws_port}",
        f"its log is above; try `cdb mexc-sim --port {port}` on its own",
    )
    stack.mexc_url = f"http://127.0.0.1:{port}"
    stack.ws_url = f"ws://127.0.0.1:{ws_port}/ws"
    # for the children started after it
    stack.env.update(MEXC_BASE_URL=stack.mexc_url, MEXC_WS_URL=stack.ws_url)
