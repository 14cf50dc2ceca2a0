"""/health against the real PostgreSQL, Redis and a real Celery worker; and with each one
taken away. Answered from the checks each web process gathers in the background (at most a
few seconds old, the age in the body), with the supervisor check when `cdb up` runs."""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
from app.web import health
from app.web.health import HealthMonitor, check_supervisor, make_gatherer
from tests.integration.conftest import start_all_queue_worker
from tests.integration.test_web_metrics import _run, _ticker, make_app, wipe

pytestmark = pytest.mark.integration

CLOSED_PORT = 1  # nothing listens there: connections are refused at once


@pytest.fixture(scope="module")
def worker(start_process):
    return start_all_queue_worker(start_process, "health")


def app_for(stack_env, **overrides):
    settings = {
        "database_url": stack_env["DATABASE_URL"],
        "redis_url": stack_env["REDIS_URL"],
        "redis_key_prefix": stack_env["REDIS_KEY_PREFIX"],
        "state_dir": stack_env["STATE_DIR"],
        "market_data_interval_sec": int(stack_env["MARKET_DATA_INTERVAL_SEC"]),  # 5: beat late > 15
        "data_stale_timeout_sec": int(stack_env["DATA_STALE_TIMEOUT_SEC"]),  # 30
    }
    settings.update(overrides)
    return make_app(settings.pop("database_url"), **settings)


@pytest.fixture
def fresh(engine):
    """A beat run 2 s ago that stored a ticker 2 s old."""
    wipe(engine)
    now = datetime.now(UTC)

    def store(beat_age: float = 2, data_age: float = 2) -> None:
        with db.transaction() as session:
            run_id = _run(session, now - timedelta(seconds=beat_age))
            _ticker(session, run_id, "BTCUSDT", "5000", now - timedelta(seconds=data_age))

    return store


def close(app) -> None:
    app.extensions[health.MONITOR_KEY].stop()
    app.extensions["celery"].close()


def get_health(app) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = app.test_client().get("/health")
    elapsed = time.monotonic() - started
    close(app)
    return response.status_code, response.get_json(), elapsed


def test_ok_when_everything_is_up(stack_env, worker, fresh):
    app = app_for(stack_env)
    fresh()
    status, body, elapsed = get_health(app)
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["service"] == "claire-de-binaire"
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() == timedelta(0)
    checks = body["checks"]
    assert set(checks) == {"database", "broker", "workers", "beat", "market_data", "stream"}
    assert all(checks[name]["status"] == "ok" for name in set(checks) - {"stream"}), body
    # No streamer runs here: the stream check says so, and the answer is still 200 (advisory:
    # the market-data stage uses REST meanwhile).
    assert (
        checks["stream"]["status"] == "fail" and "no streamer alive" in checks["stream"]["detail"]
    )
    assert body["checks"]["workers"]["count"] >= 1
    assert "failing" not in body
    assert "supervisor" not in body["checks"]  # no cdb up here
    assert elapsed < 2.5  # the first request waits for the first gathering
    checked = datetime.fromisoformat(body["checked_at"])
    assert 0 <= body["age_seconds"] < 2.5
    assert abs((datetime.now(UTC) - checked).total_seconds()) < 5


@pytest.mark.parametrize(
    ("beat_age", "data_age", "failing", "detail"),
    [
        (60, 2, "beat", "60 s old (limit 15 s)"),
        (2, 45, "market_data", "45 s old (limit 30 s)"),
    ],
)
def test_a_late_beat_or_stale_data_degrades(
    stack_env, worker, fresh, beat_age, data_age, failing, detail
):
    app = app_for(stack_env)
    fresh(beat_age=beat_age, data_age=data_age)
    status, body, _ = get_health(app)
    assert status == 503
    assert body["status"] == "degraded"
    assert body["failing"] == [failing]
    assert detail in body["checks"][failing]["detail"]


def test_no_beat_run_yet_fails(stack_env, worker, engine):
    wipe(engine)
    status, body, _ = get_health(app_for(stack_env))
    assert status == 503
    assert body["failing"] == ["beat", "market_data"]
    assert body["checks"]["beat"]["detail"] == "no beat run yet"


def test_no_worker_answering_fails_the_workers_check(stack_env, fresh):
    # Under this run's prefix (so it is cleaned up), but no worker listens there.
    app = app_for(stack_env, redis_key_prefix=stack_env["REDIS_KEY_PREFIX"] + "nobody-listens:")
    fresh()
    status, body, _ = get_health(app)
    assert status == 503
    assert body["status"] == "degraded"
    assert body["failing"] == ["workers"]
    assert body["checks"]["workers"]["count"] == 0


def test_database_unreachable_fails_fast(stack_env):
    app = app_for(stack_env, database_url=f"postgresql://postgres@127.0.0.1:{CLOSED_PORT}/cdb")
    status, body, elapsed = get_health(app)
    assert status == 503
    assert body["status"] == "fail"
    assert "database" in body["failing"]
    assert body["checks"]["database"]["status"] == "fail"
    assert body["checks"]["broker"]["status"] == "ok"
    assert elapsed < 2.5


def test_redis_unreachable_fails_fast_and_shows_no_password(stack_env):
    app = app_for(
        stack_env,
        redis_url=f"redis://127.0.0.1:{CLOSED_PORT}/0",
        redis_password="hunter2-never-shown",
    )
    started = time.monotonic()
    response = app.test_client().get("/health")
    elapsed = time.monotonic() - started
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "fail"
    assert {"broker", "workers"} <= set(body["failing"])
    assert body["checks"]["database"]["status"] == "ok"
    assert "hunter2" not in response.get_data(as_text=True)
    assert elapsed < 2.5
    close(app)


def test_liveness_checks_nothing_but_the_process(tmp_path):
    app = make_app(
        f"postgresql://postgres@127.0.0.1:{CLOSED_PORT}/cdb",
        redis_url=f"redis://127.0.0.1:{CLOSED_PORT}/0",
        state_dir=str(tmp_path),
    )
    response = app.test_client().get("/health/live")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert app.extensions[health.MONITOR_KEY]._thread is None  # nothing gathered for it
    app.extensions["celery"].close()


# Gathered in the background, not per request -----------------------------------------------


@pytest.fixture
def pings(monkeypatch):
    """Every worker ping the health checks send."""
    sent = []
    real = health.ping_workers

    def counting(celery, timeout=health.PING_TIMEOUT_SEC):
        sent.append(time.monotonic())
        return real(celery, timeout)

    monkeypatch.setattr(health, "ping_workers", counting)
    return sent


def slow_monitor(app, refresh: float = 60) -> HealthMonitor:
    """The app's monitor, replaced by one that gathers only every `refresh` seconds."""
    settings = app.extensions["settings"]
    monitor = HealthMonitor(make_gatherer(db, settings, app.extensions["celery"]), refresh=refresh)
    app.extensions[health.MONITOR_KEY].stop()
    app.extensions[health.MONITOR_KEY] = monitor
    return monitor


def test_requests_answer_from_the_gathered_checks(stack_env, worker, fresh, pings):
    app = app_for(stack_env)
    fresh()
    slow_monitor(app)
    client = app.test_client()
    first = client.get("/health").get_json()
    assert len(pings) == 1
    started = time.monotonic()
    bodies = [client.get("/health").get_json() for _ in range(30)]
    elapsed = time.monotonic() - started
    assert len(pings) == 1, "a request pinged the workers itself"
    assert {body["checked_at"] for body in bodies} == {first["checked_at"]}
    assert bodies[-1]["age_seconds"] >= first["age_seconds"]
    assert elapsed < 3  # 30 answers without a 1 s ping each (a measurement is in the report)
    close(app)


def test_the_checks_are_gathered_again_every_refresh(stack_env, worker, fresh, pings):
    app = app_for(stack_env)
    fresh()
    slow_monitor(app, refresh=0.5)
    client = app.test_client()
    first = client.get("/health").get_json()["checked_at"]
    deadline = time.monotonic() + 10
    while client.get("/health").get_json()["checked_at"] == first:
        assert time.monotonic() < deadline, "never gathered again"
        time.sleep(0.1)
    assert len(pings) >= 2
    close(app)


def test_the_dashboard_workers_card_uses_the_gathered_checks(stack_env, worker, fresh, pings):
    from tests.integration.test_web_admin import PASSWORD, login

    app = app_for(stack_env, admin_password=PASSWORD, secret_key="health-test-secret-key")
    fresh()
    slow_monitor(app)
    client = app.test_client()
    assert login(client).status_code == 302
    pages = [client.get("/admin/").get_data(as_text=True) for _ in range(5)]
    client.get("/health")
    assert len(pings) == 1  # one gathering for five dashboards and /health
    assert all("worker(s) answered a ping" in page for page in pages)
    close(app)


def test_the_monitor_stops_when_nobody_asks():
    gathered = []
    monitor = HealthMonitor(lambda now: gathered.append(now) or {}, refresh=0.05, idle=0.3)
    assert monitor.snapshot(wait=2) is not None
    time.sleep(1)
    count = len(gathered)
    time.sleep(0.5)
    assert len(gathered) == count and monitor._thread is None  # idle: the thread ended
    assert monitor.snapshot(wait=2) is not None  # and starts again when asked
    monitor.stop()


def test_a_hung_gathering_answers_within_the_bound():
    release = threading.Event()
    monitor = HealthMonitor(lambda now: release.wait(30) and {}, refresh=1)
    started = time.monotonic()
    assert monitor.snapshot(wait=0.3) is None
    assert time.monotonic() - started < 1
    release.set()
    monitor.stop()


def test_a_hung_side_is_not_started_again(stack_env, monkeypatch):
    """Each side runs in one thread at most: a hanging Redis never piles up threads."""
    release = threading.Event()
    calls = []

    def hanging(settings, celery, ping_timeout=health.PING_TIMEOUT_SEC):
        calls.append(1)
        release.wait(30)
        return {}

    monkeypatch.setattr(health, "check_broker_side", hanging)
    monkeypatch.setattr(health, "DEADLINE_SEC", 0.2)
    app = app_for(stack_env)
    gather = make_gatherer(db, app.extensions["settings"], app.extensions["celery"])
    first = gather(datetime.now(UTC))
    second = gather(datetime.now(UTC))
    assert len(calls) == 1
    assert first["broker"]["detail"].startswith("no answer for")
    assert second["workers"]["status"] == "fail" and second["database"]["status"] == "ok"
    release.set()
    close(app)


# The supervisor check -------------------------------------------------------------------------


def supervisor_file(folder, pid: int | None = None, state: str = "running", **children) -> None:
    now = datetime.now(UTC)
    iso = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    base = {
        "pid": 4250,
        "running": True,
        "restarts": 0,
        "last_exit_code": None,
        "last_restart_at": None,
        "up_since": iso,
        "next_restart_at": None,
    }
    data = {
        "version": 1,
        "pid": os.getpid() if pid is None else pid,
        "state": state,
        "started_at": iso,
        "updated_at": iso,
        "children": {
            name: {**base, **children.get(name, {})} for name in ("worker", "beat", "web", "flower")
        },
    }
    (folder / "supervisor.json").write_text(json.dumps(data))


def test_supervisor_check_is_absent_without_a_live_cdb_up(tmp_path):
    now = datetime.now(UTC)
    assert check_supervisor(tmp_path, now) is None  # compose: no file
    supervisor_file(tmp_path, pid=2**22 + 12345)  # a pid that does not run
    assert check_supervisor(tmp_path, now) is None
    (tmp_path / "supervisor.json").write_text("{not json")
    assert check_supervisor(tmp_path, now)["status"] == "fail"


def test_supervisor_check_lists_restarts_and_fails_on_a_child_down_or_looping(tmp_path):
    now = datetime.now(UTC)
    recent = (now - timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    long_ago = (now - timedelta(hours=2)).isoformat().replace("+00:00", "Z")

    supervisor_file(tmp_path)
    check = check_supervisor(tmp_path, now)
    assert check["status"] == "ok" and check["detail"] == "4 processes running; no restarts"

    once = {"restarts": 1, "last_exit_code": -9, "last_restart_at": recent}
    supervisor_file(tmp_path, worker=once)
    check = check_supervisor(tmp_path, now)
    assert check["status"] == "ok"  # one crash, restarted: healthy again
    assert "restarts: worker 1 (killed by signal 9" in check["detail"]
    assert check["children"]["worker"] == {"running": True, "restarts": 1, "last_exit_code": -9}

    looping = {"restarts": 4, "last_exit_code": 1, "last_restart_at": recent}
    supervisor_file(tmp_path, beat=looping)
    check = check_supervisor(tmp_path, now)
    assert check["status"] == "fail"
    assert check["detail"].startswith("beat keeps restarting (4 restarts, the last 20 s ago)")

    settled = {"restarts": 4, "last_exit_code": 1, "last_restart_at": long_ago}
    supervisor_file(tmp_path, beat=settled)
    assert check_supervisor(tmp_path, now)["status"] == "ok"

    down = {
        "running": False,
        "pid": None,
        "restarts": 2,
        "last_exit_code": 1,
        "next_restart_at": recent,
    }
    supervisor_file(tmp_path, flower=down)
    check = check_supervisor(tmp_path, now)
    assert check["status"] == "fail"
    assert check["detail"].startswith("flower is not running (exit code 1; restart at")

    supervisor_file(tmp_path, state="stopping")
    assert check_supervisor(tmp_path, now)["detail"].startswith("cdb up is stopping")


def test_a_child_down_degrades_health(stack_env, worker, tmp_path):
    supervisor_file(tmp_path, worker={"running": False, "last_exit_code": -9})
    status, body, _ = get_health(app_for(stack_env, state_dir=str(tmp_path)))
    assert status == 503
    assert "supervisor" in body["failing"]
    assert body["checks"]["supervisor"]["detail"].startswith("worker is not running")
    assert body["status"] in ("degraded", "fail")
    assert body["status"] == "degraded" or {"database", "broker"} & set(body["failing"])
