"""/health: is every dependency up and is the pipeline moving? /health/live: is this process.

Statuses: "ok" (200) when every check passes; otherwise 503 with "fail" when the database
or the broker is unreachable, or "degraded" when both are up but the pipeline is not
working (no worker answers, beat is late, market data is stale). `failing` names the
failing checks.

"No beat run yet" and "no market data yet" fail: a fresh system turns healthy within one
MARKET_DATA_INTERVAL_SEC of beat starting, and one where beat never starts must not look
healthy. Container liveness probes should use /health/live.

The checks run in two threads (database side, broker side) under one deadline, so the
answer takes about 1 s when everything is up (the worker ping waits its full second for
replies) and stays under 2 s when Redis or PostgreSQL is down or hangs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
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

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

SERVICE = "claire-de-binaire"
DEADLINE_SEC = 1.8
BROKER_TIMEOUT_SEC = 0.5
PING_TIMEOUT_SEC = 1.0
BEAT_PERIODS = 3  # beat is late after this many MARKET_DATA_INTERVAL_SEC without a run
HARD_DEPENDENCIES = ("database", "broker")
CHECKS = ("database", "broker", "workers", "beat", "market_data")

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
        log.warning("health: database unreachable: %s", exc)
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
        log.warning("health: pipeline queries failed: %s", exc)
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
        log.warning("health: broker unreachable: %s", type(exc).__name__)
        return {
            "broker": _fail(f"Redis PING failed ({type(exc).__name__})"),
            "workers": _fail("unknown: broker unreachable", count=0),
        }
    finally:
        client.close()
    checks = {"broker": _ok("Redis answered PING")}
    try:
        count = ping_workers(celery, ping_timeout)
    except Exception as exc:
        log.warning("health: worker ping failed: %s", type(exc).__name__)
        checks["workers"] = _fail(f"control ping failed ({type(exc).__name__})", count=0)
        return checks
    if count == 0:
        checks["workers"] = _fail("no worker answered a ping", count=0)
    else:
        checks["workers"] = _ok(f"{count} worker(s) answered a ping", count=count)
    return checks


def run_checks(app: Flask, now: datetime) -> dict[str, Check]:
    settings: Settings = app.extensions["settings"]
    celery = app.extensions["celery"]
    sides: dict[Callable[..., dict[str, Check]], tuple[Any, ...]] = {
        check_database_side: (db, settings, now),
        check_broker_side: (settings, celery),
    }
    executor = ThreadPoolExecutor(max_workers=len(sides), thread_name_prefix="health")
    futures = {executor.submit(fn, *args): fn for fn, args in sides.items()}
    done, _ = wait(futures, timeout=DEADLINE_SEC)
    executor.shutdown(wait=False, cancel_futures=True)  # a hung check must not hold /health
    checks: dict[str, Check] = {}
    for future in done:
        checks.update(future.result())
    for name in CHECKS:
        checks.setdefault(name, _fail(f"no answer within {DEADLINE_SEC} s"))
    return {name: checks[name] for name in CHECKS}


def overall(checks: dict[str, Check]) -> tuple[str, list[str]]:
    failing = [name for name, check in checks.items() if check["status"] != "ok"]
    if not failing:
        return "ok", []
    hard = any(name in HARD_DEPENDENCIES for name in failing)
    return ("fail" if hard else "degraded"), failing


@bp.get("/health")
def health() -> ResponseReturnValue:
    now = datetime.now(UTC)
    checks = run_checks(current_app._get_current_object(), now)  # type: ignore[attr-defined]
    status, failing = overall(checks)
    body: dict[str, Any] = {
        "status": status,
        "service": SERVICE,
        "timestamp": now.isoformat(timespec="seconds"),
        "checks": checks,
    }
    if failing:
        body["failing"] = failing
    return jsonify(body), (200 if status == "ok" else 503), {"Cache-Control": "no-store"}


@bp.get("/health/live")
def live() -> ResponseReturnValue:
    return jsonify({"status": "ok"}), 200, {"Cache-Control": "no-store"}
