"""The stack `cdb up` runs: its children, started in order, restarted when they exit, stopped
together; supervisor.json; the lines that tell people where everything is."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.config import Settings, redact_url
from app.supervisor import startup
from app.supervisor.children import (
    BACKOFF_FIRST_SECONDS,
    BACKOFF_MAX_SECONDS,
    STABLE_SECONDS,
    Child,
    describe_exit,
    iso,
)
from app.supervisor.probes import http_ok
from app.supervisor.startup import CDB, Logins, StackError

log = logging.getLogger("app.supervisor")

QUEUES = "market_data,signals,risk,execution"
STOP_GRACE_SECONDS = 20
WEB_WAIT_SECONDS = 60
TICK_SECONDS = 0.25
STATE_FILE = "supervisor.json"


class _Interrupted(Exception):
    """SIGINT/SIGTERM arrived while starting."""


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
    ws_url: str = ""
    logins: Logins | None = None
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
        startup.state_folder(self)
        self.env = dict(os.environ, STATE_DIR=str(self.state_dir))
        self.mexc_url = settings.mexc_base_url
        self.ws_url = settings.mexc_ws_url
        startup.free_ports(self)
        startup.redis_ready(self)
        self._check_stop()
        startup.database_ready(self)
        self._check_stop()
        startup.logins(self)
        if self.use_sim:
            startup.simulator(self)
        celery = [sys.executable, "-m", "celery", "-A", "workers", "--quiet"]  # no banner
        level = settings.log_level
        worker = [*celery, "worker", "-Q", QUEUES, "-c", str(self.concurrency), "-n", "cdb@%h"]
        self.start_child("worker", [*worker, "--loglevel", level])
        self.start_child("beat", [*celery, "beat", "--loglevel", level])
        # Gunicorn's worker processes share their HTTP metrics through this folder.
        multiproc = self.state_dir / "prometheus-multiproc"
        shutil.rmtree(multiproc, ignore_errors=True)
        multiproc.mkdir(parents=True)
        gunicorn = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{settings.web_port}"]
        self.start_child(
            "web",
            [*gunicorn, "--workers", "2", "--config", "python:app.gunicorn_conf", "app.wsgi:app"],
            PROMETHEUS_MULTIPROC_DIR=str(multiproc),
        )
        # Flower reads FLOWER_BASIC_AUTH from the environment: no secret in `ps`. Through
        # app.flower, whose write API (shutdown, pool, revoke, send task...) is refused
        # unless FLOWER_ALLOW_WRITE=true.
        flower = [sys.executable, "-m", "app.flower", "--quiet"]
        self.start_child(
            "flower", [*flower, "--address=127.0.0.1", f"--port={settings.flower_port}"]
        )
        # MEXC's WebSocket streams into Redis; runs fall back to REST while it is down.
        self.start_child("stream", [*CDB, "stream", "--ws-url", self.ws_url])
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
                answers = http_ok(self.settings.web_port)
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
                    describe_exit(code),
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

    def start_child(
        self, name: str, argv: list[str], infrastructure: bool = False, **env: str
    ) -> Child:
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

    def wait_for(
        self, child: Child, ready: Callable[[], bool], seconds: float, what: str, hint: str
    ) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            self._check_stop()
            assert child.process is not None
            code = child.process.poll()
            if code is not None:
                raise StackError(f"{what} exited at start with {describe_exit(code)}: {hint}")
            if time.monotonic() > deadline:
                raise StackError(f"{what} did not come up within {seconds:.0f} s: {hint}")
            time.sleep(0.1)

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
            f"  MEXC stream:  {redact_url(self.ws_url)} (cdb stream; REST while it is down)",
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
            "started_at": iso(self.started_at),
            "updated_at": iso(time.time()),
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
