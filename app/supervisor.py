"""`cdb up`: the whole system on one machine, started, watched and stopped together.

Children, in start order: [redis-server] [mexc-sim] worker beat web flower. The private
redis-server runs only when nothing answers at REDIS_URL (a local address) and the binary is
installed; mexc-sim only with --mexc-sim. Every child runs in its own process group with its
stdout sent to stderr, so stdout carries only what `cdb up` says to people.

Start-up, in order: the state folder (created mode 0700), WEB_PORT and FLOWER_PORT free,
Redis (or a private redis-server), the database migrated, the logins, the simulator, then
worker, beat, web and Flower. A failure at any step stops whatever was already started and
ends in one line on stderr, `error: <what is wrong>; <what to do>`, with exit status 1.

Once the web app answers /health/live (waited for up to WEB_WAIT_SECONDS), the first lines on
stdout say where everything is: the admin panel and its login, Flower and its login, the
database and Redis (passwords redacted), the MEXC base URL and the state folder. Passwords
are never printed: a generated one is only named by the file that holds it.

A child that exits is restarted after 1 s, then 2, 4 ... up to 60 s while it keeps crashing;
the delay starts again at 1 s once a child has stayed up STABLE_SECONDS. Each exit and restart
is logged with the child, its exit code and the delay. SIGINT or SIGTERM stops every child
(SIGTERM, so Celery makes a warm shutdown; the simulator and redis-server last; SIGKILL for
whatever is still running after STOP_GRACE_SECONDS or at a second signal) and exits 0.

Secrets: the generated logins go to `<state>/credentials.env`, which never exists with a mode
wider than 0600 (written to a 0600 temporary file, then renamed); the private redis-server
reads its password from `<state>/redis/redis.conf` (mode 0600), never from its command line.

`<state>/supervisor.json` (replaced atomically whenever a child starts, exits or restarts):

    {
      "version": 1,
      "pid": 4242,                      # the `cdb up` process
      "state": "starting" | "running" | "stopping" | "stopped" | "failed",
      "started_at": "2025-01-01T12:00:00.000Z",
      "updated_at": "2025-01-01T12:05:00.000Z",
      "children": {                     # in start order
        "worker": {
          "pid": 4250,                  # null while the child is not running
          "running": true,
          "restarts": 2,                # restarts since `cdb up` started
          "last_exit_code": -9,         # null if it never exited; negative: killed by signal N
          "last_restart_at": "2025-01-01T12:04:58.000Z",   # null if never restarted
          "up_since": "2025-01-01T12:04:58.000Z",          # null while not running
          "next_restart_at": null       # set while waiting to restart it
        },
        ...
      }
    }

Times are UTC ISO 8601. A file whose `pid` no longer runs is left over from a `cdb up` that
was killed; `state` is "stopped" after a clean stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import redis

from app import migrate
from app.config import Settings, redact_url

log = logging.getLogger(__name__)

QUEUES = "market_data,signals,risk,execution"
STOP_GRACE_SECONDS = 20
WEB_WAIT_SECONDS = 60
REDIS_WAIT_SECONDS = 15
SIM_WAIT_SECONDS = 15
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
STABLE_SECONDS = 60.0
TICK_SECONDS = 0.25
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
STATE_FILE = "supervisor.json"
CREDENTIALS_FILE = "credentials.env"

# The simulator is started through the `cdb` entry point's function, whether app.cli is a
# module or a package.
CDB = [
    sys.executable,
    "-c",
    "import sys; from app.cli import main; sys.exit(main(prog_name='cdb'))",
]


class StackError(RuntimeError):
    """The stack cannot start; the message says what is wrong and what to do."""


class _Interrupted(Exception):
    """SIGINT/SIGTERM arrived while starting."""


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def _one_line(text: object, limit: int = 300) -> str:
    words = " ".join(str(text).split())
    return words if len(words) <= limit else words[: limit - 3] + "..."


# --- child processes ------------------------------------------------------------------------

_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)


def _in_child() -> None:
    """Runs in the child between fork and exec: end it with SIGTERM if `cdb up` dies."""
    if _libc is not None:
        _libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    infrastructure: bool = False  # stopped after the others (redis-server, mexc-sim)
    process: subprocess.Popen | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    last_restart_at: float | None = None
    up_since: float | None = None
    started: float = 0.0  # monotonic
    backoff: float = BACKOFF_FIRST_SECONDS
    restart_due: float | None = None  # monotonic
    next_restart_at: float | None = None  # wall clock, for supervisor.json

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        try:
            stdout = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            stdout = subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            start_new_session=True,  # own process group: stray grandchildren can be ended
            preexec_fn=_in_child if _libc is not None else None,
        )
        self.started = time.monotonic()
        self.up_since = time.time()
        self.restart_due = self.next_restart_at = None

    def kill_group(self) -> None:
        """SIGKILL whatever is left in the child's process group (e.g. orphaned pool
        processes of a worker that was killed)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def as_dict(self) -> dict[str, object]:
        running = self.running
        return {
            "pid": self.process.pid if running and self.process else None,
            "running": running,
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
            "last_restart_at": _iso(self.last_restart_at),
            "up_since": _iso(self.up_since) if running else None,
            "next_restart_at": _iso(self.next_restart_at),
        }


# --- small checks ---------------------------------------------------------------------------


def broker_problem(url: str) -> str | None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return str(exc)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _port_taken(port: int) -> str | None:
    """Why 127.0.0.1:port cannot be listened on, or None when it is free."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn and tornado
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _http_ok(port: int, path: str = "/health/live") -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


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


def _mask_in_logs(values: list[str]) -> None:
    """Add generated secrets to what the JSON log formatter replaces with ***."""
    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        known = getattr(formatter, "secrets", None)
        if isinstance(known, list):
            formatter.secrets = sorted({*known, *values}, key=len, reverse=True)  # type: ignore[union-attr]


def _redis_conf_value(value: str) -> str:
    if any(ord(ch) < 32 for ch in value):
        raise StackError("the Redis password in REDIS_URL holds control characters: change it")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- the stack ------------------------------------------------------------------------------


@dataclass
class _Logins:
    credentials: Path
    admin_generated: bool = False
    flower_user: str = "flower"
    flower_generated: bool = False


@dataclass
class Stack:
    settings: Settings
    use_sim: bool
    sim_symbols: int
    concurrency: int
    children: list[Child] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    signals: int = 0
    state: str = "starting"
    private_redis: bool = False
    mexc_url: str = ""
    logins: _Logins | None = None
    started_at: float = field(default_factory=time.time)
    state_warned: bool = False

    @property
    def state_dir(self) -> Path:
        return Path(self.settings.state_dir).absolute()

    @property
    def stopping(self) -> bool:
        return self.signals > 0

    # -- running --------------------------------------------------------------------------

    def run(self) -> int:
        def request_stop(signum: int, _frame: object) -> None:
            self.signals += 1
            if self.signals == 1:
                log.info("stopping on %s", signal.Signals(signum).name)
            else:
                log.warning("second %s: killing what is still running", signal.Signals(signum).name)

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        try:
            self.start()
        except StackError as exc:
            self.stop("failed")
            message = str(exc)
            for secret in self.settings.secret_values():
                message = message.replace(secret, "***")
            print(f"error: {message}", file=sys.stderr, flush=True)
            return 1
        except _Interrupted:
            self.stop("stopped")
            return 0
        except BaseException:
            self.stop("failed")
            raise
        self.supervise()
        self.stop("stopped")
        return 0

    def start(self) -> None:
        settings = self.settings
        self._state_dir()
        self.env = dict(os.environ, STATE_DIR=str(self.state_dir))
        self.mexc_url = settings.mexc_base_url
        self._check_ports()
        self._redis()
        self._check_stop()
        self._database()
        self._check_stop()
        self._credentials()
        if self.use_sim:
            self._simulator()
        celery = [sys.executable, "-m", "celery", "-A", "workers", "--quiet"]  # no banner
        level = settings.log_level
        worker = [*celery, "worker", "-Q", QUEUES, "-c", str(self.concurrency), "-n", "cdb@%h"]
        self._start("worker", [*worker, "--loglevel", level])
        self._start("beat", [*celery, "beat", "--loglevel", level])
        # Gunicorn's worker processes share their HTTP metrics through this folder.
        multiproc = self.state_dir / "prometheus-multiproc"
        shutil.rmtree(multiproc, ignore_errors=True)
        multiproc.mkdir(parents=True)
        gunicorn = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{settings.web_port}"]
        self._start(
            "web",
            [*gunicorn, "--workers", "2", "--config", "python:app.gunicorn_conf", "app.wsgi:app"],
            PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        )
        # Flower reads FLOWER_BASIC_AUTH from the environment: no secret in `ps`. Through
        # app.flower, whose write API (shutdown, pool, revoke, send task...) is refused
        # unless FLOWER_ALLOW_WRITE=true.
        flower = [sys.executable, "-m", "app.flower", "--quiet"]
        self._start("flower", [*flower, "--address=127.0.0.1", f"--port={settings.flower_port}"])
        self.state = "running"
        self.write_state()

    def supervise(self) -> None:
        """Restart what exits until a signal arrives; say where everything is once the web
        app answers."""
        announced = False
        web_deadline = time.monotonic() + WEB_WAIT_SECONDS
        while not self.stopping:
            if self._tick():
                self.write_state()
            if not announced:
                answers = _http_ok(self.settings.web_port)
                if answers or time.monotonic() > web_deadline:
                    self._announce(answers)
                    announced = True
            time.sleep(TICK_SECONDS)

    def _tick(self) -> bool:
        """One look at every child; True when something changed."""
        changed = False
        now = time.monotonic()
        for child in self.children:
            if child.process is not None and child.restart_due is None:
                code = child.process.poll()
                if code is None:
                    continue
                child.kill_group()
                ran = now - child.started
                if ran >= STABLE_SECONDS:
                    child.backoff = BACKOFF_FIRST_SECONDS
                delay = child.backoff
                child.backoff = min(child.backoff * 2, BACKOFF_MAX_SECONDS)
                child.last_exit_code = code
                child.restart_due = now + delay
                child.next_restart_at = time.time() + delay
                log.warning(
                    "%s (pid %s) exited with %s after %.0f s; restarting it in %.0f s",
                    child.name,
                    child.process.pid,
                    _describe_exit(code),
                    ran,
                    delay,
                    extra={
                        "child": child.name,
                        "pid": child.process.pid,
                        "exit_code": code,
                        "delay_sec": delay,
                        "restarts": child.restarts,
                    },
                )
                changed = True
            elif child.restart_due is not None and now >= child.restart_due:
                child.restarts += 1
                child.last_restart_at = time.time()
                try:
                    child.spawn()
                except OSError as exc:
                    delay = child.backoff
                    child.backoff = min(child.backoff * 2, BACKOFF_MAX_SECONDS)
                    child.restart_due = now + delay
                    child.next_restart_at = time.time() + delay
                    log.error(
                        "cannot restart %s: %s; trying again in %.0f s",
                        child.name,
                        exc,
                        delay,
                        extra={"child": child.name, "delay_sec": delay},
                    )
                else:
                    assert child.process is not None
                    log.info(
                        "restarted %s (pid %s, restart %d)",
                        child.name,
                        child.process.pid,
                        child.restarts,
                        extra={
                            "child": child.name,
                            "pid": child.process.pid,
                            "restarts": child.restarts,
                            "last_exit_code": child.last_exit_code,
                        },
                    )
                changed = True
        return changed

    def stop(self, final_state: str) -> None:
        """SIGTERM to every child (the simulator and redis-server last), SIGKILL after
        STOP_GRACE_SECONDS or at a second signal."""
        self.state = "stopping"
        self.write_state()
        forced_at = self.signals
        for infrastructure in (False, True):
            tier = [c for c in self.children if c.infrastructure is infrastructure]
            running = [c for c in tier if c.running]
            for child in running:
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            while any(c.running for c in running):
                if time.monotonic() > deadline or self.signals > forced_at:
                    for child in running:
                        if child.running:
                            log.warning("%s did not stop in time; killing it", child.name)
                            child.kill_group()
                            with contextlib.suppress(ProcessLookupError):
                                child.process.kill()  # type: ignore[union-attr]
                    break
                time.sleep(0.1)
            for child in tier:
                if child.process is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        child.process.wait(5)
                    child.kill_group()
                    if child.process.returncode is not None and child.restart_due is None:
                        child.last_exit_code = child.process.returncode
                child.restart_due = child.next_restart_at = None
        if self.children:
            log.info("all processes stopped")
        self.state = final_state
        self.write_state()

    # -- start-up steps ---------------------------------------------------------------------

    def _check_stop(self) -> None:
        if self.stopping:
            raise _Interrupted

    def _start(self, name: str, argv: list[str], infrastructure: bool = False, **env: str) -> Child:
        child = Child(name, argv, {**self.env, **env}, infrastructure=infrastructure)
        try:
            child.spawn()
        except OSError as exc:
            raise StackError(f"cannot start {name} ({argv[0]}): {exc}") from None
        self.children.append(child)
        assert child.process is not None
        log.info("started %s", name, extra={"child": name, "pid": child.process.pid})
        self.write_state()
        return child

    def _wait(
        self, child: Child, ready: Callable[[], bool], seconds: float, what: str, hint: str
    ) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            self._check_stop()
            assert child.process is not None
            code = child.process.poll()
            if code is not None:
                raise StackError(f"{what} exited at start with {_describe_exit(code)}: {hint}")
            if time.monotonic() > deadline:
                raise StackError(f"{what} did not come up within {seconds:.0f} s: {hint}")
            time.sleep(0.1)

    def _state_dir(self) -> None:
        folder = self.state_dir
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

    def _check_ports(self) -> None:
        settings = self.settings
        if settings.web_port == settings.flower_port:
            raise StackError(
                f"WEB_PORT and FLOWER_PORT are both {settings.web_port}: give them different ports"
            )
        for variable, port in (
            ("WEB_PORT", settings.web_port),
            ("FLOWER_PORT", settings.flower_port),
        ):
            reason = _port_taken(port)
            if reason:
                raise StackError(
                    f"port {port} ({variable}) is already in use on 127.0.0.1 ({reason}): stop "
                    f"what listens there (another `cdb up`?) or set {variable} to a free port"
                )

    def _redis(self) -> None:
        url = self.settings.broker_url
        problem = broker_problem(url)
        if problem is None:
            return
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
        shown = redact_url(url)
        if _listening(host, port):
            raise StackError(
                f"Redis at {shown} answers but cannot be used ({_one_line(problem)}): "
                "check REDIS_URL and REDIS_PASSWORD"
            )
        if host not in LOCAL_HOSTS or parts.scheme != "redis":
            raise StackError(
                f"Redis at {shown} does not answer ({_one_line(problem)}): start it or set "
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
        folder = self.state_dir / "redis"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        lines = [
            "# Written by `cdb up` at every start (mode 600: it holds the password).",
            "bind 127.0.0.1 -::1",  # -: only where IPv6 is there
            f"port {port}",
            f"dir {_redis_conf_value(str(folder))}",
            "appendonly yes",
            'save ""',
            "protected-mode yes",
            "daemonize no",
            'logfile ""',
        ]
        if parts.password:
            lines.append(f"requirepass {_redis_conf_value(unquote(parts.password))}")
        conf = folder / "redis.conf"
        write_private(conf, "\n".join(lines) + "\n")
        child = self._start("redis-server", [binary, str(conf)], infrastructure=True)
        self._wait(
            child,
            lambda: broker_problem(url) is None,
            REDIS_WAIT_SECONDS,
            f"the private redis-server on port {port}",
            f"its log is above; check the port in REDIS_URL and the folder {folder}",
        )
        self.private_redis = True

    def _database(self) -> None:
        url = self.settings.sqlalchemy_url
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
                f"{_one_line(reason)}): {hint}"
            ) from None
        log.info("database ready", extra={"database": redact_url(url)})

    def _credentials(self) -> None:
        """Admin and Flower logins: from the environment, or generated once into
        <state>/credentials.env (mode 600), so that they are never printed or logged."""
        settings = self.settings
        path = self.state_dir / CREDENTIALS_FILE
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
                self.env[key] = stored[key]
                generated.append(key)
            if stored:
                write_private(path, "".join(f"{k}={v}\n" for k, v in stored.items()))
        except OSError as exc:
            raise StackError(
                f"cannot write the logins to {path} ({exc.strerror or exc}); "
                "set STATE_DIR to a folder you can write"
            ) from None
        _mask_in_logs([stored[key] for key in generated])
        _mask_in_logs([stored[key].partition(":")[2] for key in generated if ":" in stored[key]])
        flower_auth = self.env.get("FLOWER_BASIC_AUTH") or (
            settings.flower_basic_auth.get_secret_value() if settings.flower_basic_auth else ""
        )
        self.logins = _Logins(
            path,
            admin_generated="ADMIN_PASSWORD" in generated,
            flower_user=flower_auth.partition(":")[0],
            flower_generated="FLOWER_BASIC_AUTH" in generated,
        )
        if generated:
            log.info(
                "generated logins are in %s (ADMIN_USERNAME=%s)", path, settings.admin_username
            )

    def _simulator(self) -> None:
        port = free_port()
        argv = [*CDB, "mexc-sim", "--port", str(port), "--symbols", str(self.sim_symbols)]
        child = self._start("mexc-sim", argv, infrastructure=True)
        self._wait(
            child,
            lambda: _listening("127.0.0.1", port),
            SIM_WAIT_SECONDS,
            f"the MEXC simulator on port {port}",
            f"its log is above; try `cdb mexc-sim --port {port}` on its own",
        )
        self.mexc_url = f"http://127.0.0.1:{port}"
        self.env["MEXC_BASE_URL"] = self.mexc_url  # for the children started after it

    # -- what people and /health see ------------------------------------------------------------

    def summary(self, answers: bool = True) -> list[str]:
        settings, logins = self.settings, self.logins
        web = f"http://127.0.0.1:{settings.web_port}"
        flower = f"http://127.0.0.1:{settings.flower_port}"
        assert logins is not None
        admin_password = (
            f"password in {logins.credentials}"
            if logins.admin_generated
            else "password from ADMIN_PASSWORD"
        )
        flower_password = (
            f"password in {logins.credentials}"
            if logins.flower_generated
            else "password from FLOWER_BASIC_AUTH"
        )
        redis_line = redact_url(settings.broker_url)
        if self.private_redis:
            redis_line += (
                f" (a private redis-server started by cdb up, data in {self.state_dir / 'redis'})"
            )
        if settings.redis_key_prefix:
            redis_line += f", key prefix {settings.redis_key_prefix}"
        mexc_line = redact_url(self.mexc_url)
        if self.use_sim:
            mexc_line += " (the built-in MEXC simulator, --mexc-sim)"
        head = (
            "Claire de Binaire is running; Ctrl-C (or SIGTERM) stops it."
            if answers
            else f"Claire de Binaire is starting, but the web app does not answer on port "
            f"{settings.web_port} yet (see the log on stderr); Ctrl-C (or SIGTERM) stops it."
        )
        return [
            head,
            f"  Admin panel:  {web}/admin",
            f"                login: user {settings.admin_username}, {admin_password}",
            f"  Flower:       {flower}",
            f"                login: user {logins.flower_user}, {flower_password}",
            f"  Health:       {web}/health  (metrics: {web}/metrics)",
            f"  Database:     {redact_url(settings.sqlalchemy_url)}",
            f"  Redis:        {redis_line}",
            f"  MEXC:         {mexc_line}",
            f"  State folder: {self.state_dir}  (processes: {self.state_dir / STATE_FILE})",
        ]

    def _announce(self, answers: bool) -> None:
        with contextlib.suppress(OSError, ValueError):  # stdout closed: the log still says it
            sys.stdout.write("\n".join(self.summary(answers)) + "\n")
            sys.stdout.flush()
        web = f"http://127.0.0.1:{self.settings.web_port}"
        log.info(
            "Claire de Binaire is up: admin %s/admin, health %s/health, metrics %s/metrics, "
            "Flower http://127.0.0.1:%s, market data from %s",
            web,
            web,
            web,
            self.settings.flower_port,
            redact_url(self.mexc_url),
        )

    def write_state(self) -> None:
        if not self.state_dir.is_dir():
            return
        data = {
            "version": 1,
            "pid": os.getpid(),
            "state": self.state,
            "started_at": _iso(self.started_at),
            "updated_at": _iso(time.time()),
            "children": {child.name: child.as_dict() for child in self.children},
        }
        try:
            fd, tmp = tempfile.mkstemp(prefix=".supervisor.", suffix=".tmp", dir=self.state_dir)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(data, handle, indent=2)
                    handle.write("\n")
                os.replace(tmp, self.state_dir / STATE_FILE)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            if not self.state_warned:
                log.warning("cannot write %s: %s", self.state_dir / STATE_FILE, exc)
                self.state_warned = True


def run_local_stack(settings: Settings, use_sim: bool, sim_symbols: int, concurrency: int) -> int:
    """Run the whole system until SIGINT/SIGTERM; 0 after a clean stop, 1 when it cannot start."""
    return Stack(settings, use_sim, sim_symbols, concurrency).run()
