"""/health against the real PostgreSQL, Redis and a real Celery worker; and with each one
taken away."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from app.extensions import db
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


def get_health(app) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = app.test_client().get("/health")
    elapsed = time.monotonic() - started
    app.extensions["celery"].close()
    return response.status_code, response.get_json(), elapsed


def test_ok_when_everything_is_up(stack_env, worker, fresh):
    app = app_for(stack_env)
    fresh()
    status, body, elapsed = get_health(app)
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["service"] == "claire-de-binaire"
    assert datetime.fromisoformat(body["timestamp"]).utcoffset() == timedelta(0)
    assert set(body["checks"]) == {"database", "broker", "workers", "beat", "market_data"}
    assert all(check["status"] == "ok" for check in body["checks"].values()), body
    assert body["checks"]["workers"]["count"] >= 1
    assert "failing" not in body
    assert elapsed < 2


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
    app.extensions["celery"].close()


def test_liveness_checks_nothing_but_the_process(tmp_path):
    app = make_app(
        f"postgresql://postgres@127.0.0.1:{CLOSED_PORT}/cdb",
        redis_url=f"redis://127.0.0.1:{CLOSED_PORT}/0",
        state_dir=str(tmp_path),
    )
    response = app.test_client().get("/health/live")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    app.extensions["celery"].close()
