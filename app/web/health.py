"""/health: is every dependency up and is the pipeline moving? /health/live: is this process.

Statuses: "ok" (200) when every check passes; otherwise 503 with "fail" when the database
or the broker is unreachable, or "degraded" when both are up but the pipeline is not
working (no worker answers, beat is late, market data is stale, a process that `cdb up`
supervises is down or keeps restarting). `failing` names the failing checks.

"No beat run yet" and "no market data yet" fail: a fresh system turns healthy within one
MARKET_DATA_INTERVAL_SEC of beat starting, and one where beat never starts must not look
healthy. Container liveness probes should use /health/live.

The checks are not run per request: the worker ping alone waits its full second for replies,
and a gunicorn process held that long per poll starves the admin panel. Each web process
gathers them in a background thread (HealthMonitor) every REFRESH_SEC while someone asks
(/health or the dashboard's workers card), and both answer from the newest gathering; the
body says when it was taken (`checked_at`, `age_seconds`). The thread starts on the first
request, which waits for the first gathering (at most FIRST_WAIT_SEC), and ends after
IDLE_SEC without a request. A gathering runs the database side and the broker side in
threads of their own under one deadline; a side that hangs is not started again until it
returns, so a hung PostgreSQL or Redis never piles up threads.

`supervisor` is there only when `<state_dir>/supervisor.json` exists and the `cdb up` that
writes it is alive (app/supervisor.py describes the file): it fails, which degrades the
status, while a child is not running or keeps restarting (RESTART_LOOP restarts, the last
within RESTART_WINDOW_SEC); its detail lists every child's restarts. Compose has no such
file: there the check is absent.

`stream` reports `cdb stream` (connected connections, lag from MEXC's send time, the age of
the last message and of the mini tickers). It is advisory: listed in `checks`, never the
reason for a 503, since without the stream the market-data stage uses REST.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.config import Settings
from app.extensions import Database, db
from app.services.admin_queries import newest_run
from app.services.market_view import newest_data_time
from app.stream import stream_health

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

SERVICE = "claire-de-binaire"
DEADLINE_SEC = 1.8  # one gathering waits this long for its sides at most
BROKER_TIMEOUT_SEC = 0.5
PING_TIMEOUT_SEC = 1.0
BEAT_PERIODS = 3  # beat is late after this many MARKET_DATA_INTERVAL_SEC without a run
REFRESH_SEC = 2.0  # a new gathering starts this long after the previous one started
IDLE_SEC = 120.0  # the background thread ends after this long without a request
FIRST_WAIT_SEC = 2.5  # a request with nothing recent enough waits this long for a gathering
MAX_AGE_SEC = 10.0  # older than this (the thread was idle), a request waits for a new one
HARD_DEPENDENCIES = ("database", "broker")
CHECKS = ("database", "broker", "workers", "beat", "market_data", "stream")
# Reported, but never what makes the answer fail: without the stream, runs use REST.
ADVISORY = ("stream",)
SUPERVISOR_FILE = "supervisor.json"
RESTART_LOOP = 3
RESTART_WINDOW_SEC = 600
MONITOR_KEY = "health_monitor"

Check = dict[str, Any]


def _ok(detail: str, **extra: Any) -> Check:
    return {"status": "ok", "detail": detail, **extra}


def _fail(detail: str, **extra: Any) -> Check:
    return {"status": "fail", "detail": detail, **extra}


def check_database_side(database: Database, settings: Settings, now: datetime) -> dict[str, Check]:
    """database (SELECT 1), then beat and market_data from what the database holds."""
    try:
        with database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        reason = "database unreachable"
        return {
            "database": _fail(f"SELECT 1 failed ({type(exc).__name__})"),
            "beat": _fail(f"unknown: {reason}"),
            "market_data": _fail(f"unknown: {reason}"),
        }
    checks = {"database": _ok("SELECT 1 answered")}
    try:
        with Session(database.engine) as session:
            checks["beat"] = _beat(session, settings, now)
            checks["market_data"] = _market_data(session, settings, now)
    except SQLAlchemyError as exc:  # e.g. a database that was never migrated
        checks["beat"] = checks["market_data"] = _fail(f"query failed ({type(exc).__name__})")
    return checks


def _beat(session: Session, settings: Settings, now: datetime) -> Check:
    run = newest_run(session, trigger="beat")
    limit = BEAT_PERIODS * settings.market_data_interval_sec
    if run is None:
        return _fail("no beat run yet", limit_seconds=limit)
    age = round((now - run.started_at).total_seconds(), 1)
    if age > limit:
        return _fail(f"newest beat run is {age:.0f} s old (limit {limit} s)", age_seconds=age)
    return _ok(f"newest beat run {age:.0f} s ago", age_seconds=age, limit_seconds=limit)


def _market_data(session: Session, settings: Settings, now: datetime) -> Check:
    newest = newest_data_time(session)
    limit = settings.data_stale_timeout_sec
    if newest is None:
        return _fail("no market data yet", limit_seconds=limit)
    age = round((now - newest).total_seconds(), 1)
    if age > limit:
        return _fail(f"newest ticker is {age:.0f} s old (limit {limit} s)", age_seconds=age)
    return _ok(f"newest ticker {age:.0f} s old", age_seconds=age, limit_seconds=limit)


def ping_workers(celery: Any, timeout: float = PING_TIMEOUT_SEC) -> int:
    """How many Celery workers answer a control ping within `timeout` seconds."""
    return len(celery.control.ping(timeout=timeout) or [])


def check_broker_side(
    settings: Settings, celery: Any, ping_timeout: float = PING_TIMEOUT_SEC
) -> dict[str, Check]:
    """broker (Redis PING with a short timeout), then workers (a Celery control ping)."""
    client = redis.Redis.from_url(
        settings.broker_url,
        socket_connect_timeout=BROKER_TIMEOUT_SEC,
        socket_timeout=BROKER_TIMEOUT_SEC,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        # The exception text names host and port only; the URL (and its password) stays out.
        client.close()
        return {
            "broker": _fail(f"Redis PING failed ({type(exc).__name__})"),
            "workers": _fail("unknown: broker unreachable", count=0),
            "stream": _fail("unknown: broker unreachable"),
        }
    checks = {"broker": _ok("Redis answered PING"), "stream": _stream(client, settings)}
    client.close()
    try:
        count = ping_workers(celery, ping_timeout)
    except Exception as exc:
        checks["workers"] = _fail(f"control ping failed ({type(exc).__name__})", count=0)
        return checks
    if count == 0:
        checks["workers"] = _fail("no worker answered a ping", count=0)
    else:
        checks["workers"] = _ok(f"{count} worker(s) answered a ping", count=count)
    return checks


def _stream(client: redis.Redis, settings: Settings) -> Check:
    """`cdb stream`'s live state: connected, lag, last message age. Advisory: while it is
    down or stale the market-data stage uses REST."""
    try:
        found = stream_health(
            client, settings.redis_key_prefix, max_age_sec=settings.stream_max_age_sec
        )
    except redis.RedisError as exc:
        return _fail(f"stream state unreadable ({type(exc).__name__})")
    status = found.pop("status")
    detail = found.pop("detail")
    if status == "ok":
        return _ok(detail, **found)
    return _fail(f"{status}: {detail} (runs use REST meanwhile)", **found)


# The supervisor check -------------------------------------------------------------------------


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # there, but someone else's
    return True


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _exit_text(code: Any) -> str:
    if not isinstance(code, int):
        return "no exit yet"
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def check_supervisor(state_dir: Path, now: datetime) -> Check | None:
    """What `cdb up` says of its children (supervisor.json); None when no live `cdb up`
    writes the file (compose, or a file left over from a `cdb up` that was killed)."""
    path = Path(state_dir) / SUPERVISOR_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read {SUPERVISOR_FILE} ({type(exc).__name__})")
    if not isinstance(data, dict) or not isinstance(data.get("children"), dict):
        return _fail(f"{SUPERVISOR_FILE} holds no children")
    if not _pid_alive(data.get("pid")):
        return None
    state = data.get("state")
    problems = [] if state in ("starting", "running") else [f"cdb up is {state}"]
    children: dict[str, dict[str, Any]] = {}
    restarted = []
    for name, child in data["children"].items():
        if not isinstance(child, dict):
            continue
        restarts = child.get("restarts") if isinstance(child.get("restarts"), int) else 0
        last_exit = child.get("last_exit_code")
        children[name] = {
            "running": bool(child.get("running")),
            "restarts": restarts,
            "last_exit_code": last_exit if isinstance(last_exit, int) else None,
        }
        last_restart = _parse_time(child.get("last_restart_at"))
        if restarts:
            when = f", the last at {child.get('last_restart_at')}" if last_restart else ""
            restarted.append(f"{name} {restarts} ({_exit_text(last_exit)}{when})")
        if not child.get("running"):
            retry = child.get("next_restart_at")
            problems.append(
                f"{name} is not running ({_exit_text(last_exit)}"
                + (f"; restart at {retry})" if retry else ")")
            )
        elif (
            restarts >= RESTART_LOOP
            and last_restart is not None
            and (now - last_restart).total_seconds() < RESTART_WINDOW_SEC
        ):
            problems.append(
                f"{name} keeps restarting ({restarts} restarts, the last "
                f"{(now - last_restart).total_seconds():.0f} s ago)"
            )
    summary = "restarts: " + ", ".join(restarted) if restarted else "no restarts"
    extra = {"pid": data.get("pid"), "state": state, "children": children}
    if problems:
        return _fail("; ".join(problems) + f"; {summary}", **extra)
    return _ok(f"{len(children)} processes running; {summary}", **extra)


# Gathering in the background ------------------------------------------------------------------


class _Side:
    """One side of the checks, run in a daemon thread; never two threads at once."""

    def __init__(self, name: str, names: tuple[str, ...], run: Callable[[datetime], Any]):
        self.name = name
        self.names = names  # the checks it answers for
        self.run = run
        self.thread: threading.Thread | None = None
        self.started = 0.0
        self.result: dict[str, Check] | None = None

    def start(self, now: datetime) -> None:
        if self.thread is not None and self.thread.is_alive():
            return  # still busy with an earlier gathering: wait for that one
        self.result = None
        self.started = time.monotonic()

        def target() -> None:
            try:
                self.result = self.run(now)
            except Exception as exc:  # a check function must never kill the thread
                log.exception("health: the %s checks failed", self.name)
                self.result = {
                    name: _fail(f"check failed ({type(exc).__name__})") for name in self.names
                }

        self.thread = threading.Thread(target=target, name=f"health-{self.name}", daemon=True)
        self.thread.start()

    def answer(self) -> dict[str, Check]:
        if self.result is not None:  # this gathering's, or a late answer to an earlier one
            return self.result
        waited = time.monotonic() - self.started
        return {name: _fail(f"no answer for {waited:.1f} s") for name in self.names}


def make_gatherer(
    database: Database, settings: Settings, celery: Any
) -> Callable[[datetime], dict[str, Check]]:
    """One gathering of every check, taking at most about DEADLINE_SEC."""
    sides = [
        _Side(
            "database",
            ("database", "beat", "market_data"),
            lambda now: check_database_side(database, settings, now),
        ),
        _Side(
            "broker",
            ("broker", "workers", "stream"),
            lambda now: check_broker_side(settings, celery),
        ),
    ]

    def gather(now: datetime) -> dict[str, Check]:
        for side in sides:
            side.start(now)
        deadline = time.monotonic() + DEADLINE_SEC
        for side in sides:
            if side.thread is not None:
                side.thread.join(max(0.0, deadline - time.monotonic()))
        checks: dict[str, Check] = {}
        for side in sides:
            checks.update(side.answer())
        ordered = {name: checks[name] for name in CHECKS}
        supervisor = check_supervisor(settings.state_dir, now)
        if supervisor is not None:
            ordered["supervisor"] = supervisor
        return ordered

    return gather


@dataclass(frozen=True)
class Snapshot:
    checks: dict[str, Check]
    at: datetime  # when the gathering started (UTC)
    taken: float  # the same, on the monotonic clock

    def age(self) -> float:
        return time.monotonic() - self.taken


class HealthMonitor:
    """The newest checks of this process, gathered by a background thread while asked for."""

    def __init__(
        self,
        gather: Callable[[datetime], dict[str, Check]],
        refresh: float = REFRESH_SEC,
        idle: float = IDLE_SEC,
    ) -> None:
        self._gather = gather
        self.refresh = refresh
        self.idle = idle
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._snapshot: Snapshot | None = None
        self._asked = 0.0
        self._stopped = False
        self._statuses: dict[str, str] = {}

    def snapshot(self, wait: float = FIRST_WAIT_SEC) -> Snapshot | None:
        """The newest gathering. Starts the thread when it is not running; waits up to `wait`
        seconds when there is none yet or the one held is older than MAX_AGE_SEC (None when
        even then there is none)."""
        if self._pid != os.getpid():  # forked after use: the thread stayed in the parent
            self._reset()
        with self._lock:
            self._asked = time.monotonic()
            self._stopped = False
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="health", daemon=True)
                self._thread.start()
            deadline = time.monotonic() + wait
            while self._snapshot is None or self._snapshot.age() > MAX_AGE_SEC:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._snapshot

    def stop(self) -> None:
        """End the thread (it ends by itself after IDLE_SEC without a request)."""
        with self._lock:
            self._stopped = True
        self._wake.set()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopped or time.monotonic() - self._asked > self.idle:
                    self._thread = None
                    return
            started = time.monotonic()
            now = datetime.now(UTC)
            try:
                checks = self._gather(now)
            except Exception as exc:
                log.exception("health: gathering the checks failed")
                checks = {
                    name: _fail(f"gathering failed ({type(exc).__name__})") for name in CHECKS
                }
            self._log_changes(checks)
            with self._lock:
                self._snapshot = Snapshot(checks, now, started)
                self._changed.notify_all()
            self._wake.wait(max(0.0, self.refresh - (time.monotonic() - started)))
            self._wake.clear()

    def _log_changes(self, checks: dict[str, Check]) -> None:
        """One log line when a check changes status, not one per gathering."""
        for name, check in checks.items():
            before = self._statuses.get(name)
            if before != check["status"]:
                if check["status"] != "ok":
                    log.warning("health: %s %s: %s", name, check["status"], check["detail"])
                elif before is not None:
                    log.info("health: %s ok again: %s", name, check["detail"])
            self._statuses[name] = check["status"]


def monitor_of(app: Flask) -> HealthMonitor:
    return app.extensions[MONITOR_KEY]


def latest_checks(wait: float = FIRST_WAIT_SEC) -> Snapshot | None:
    """The current app's newest gathering (for the dashboard as for /health)."""
    return monitor_of(current_app).snapshot(wait)  # type: ignore[arg-type]


def overall(checks: dict[str, Check]) -> tuple[str, list[str]]:
    failing = [
        name for name, check in checks.items() if check["status"] != "ok" and name not in ADVISORY
    ]
    if not failing:
        return "ok", []
    hard = any(name in HARD_DEPENDENCIES for name in failing)
    return ("fail" if hard else "degraded"), failing


@bp.get("/health")
def health() -> ResponseReturnValue:
    snapshot = latest_checks()
    now = datetime.now(UTC)
    body: dict[str, Any] = {"service": SERVICE, "timestamp": now.isoformat(timespec="seconds")}
    if snapshot is None:
        checks = {name: _fail(f"no answer within {FIRST_WAIT_SEC} s") for name in CHECKS}
        body.update(checked_at=None, age_seconds=None)
    else:
        checks = snapshot.checks
        body.update(
            checked_at=snapshot.at.isoformat(timespec="milliseconds"),
            age_seconds=round(snapshot.age(), 2),
        )
    status, failing = overall(checks)
    body = {"status": status, **body, "checks": checks}
    if failing:
        body["failing"] = failing
    return jsonify(body), (200 if status == "ok" else 503), {"Cache-Control": "no-store"}


@bp.get("/health/live")
def live() -> ResponseReturnValue:
    return jsonify({"status": "ok"}), 200, {"Cache-Control": "no-store"}


def init_health(app: Flask) -> None:
    settings: Settings = app.extensions["settings"]
    gather = make_gatherer(db, settings, app.extensions["celery"])
    app.extensions[MONITOR_KEY] = HealthMonitor(gather)
    app.register_blueprint(bp)
