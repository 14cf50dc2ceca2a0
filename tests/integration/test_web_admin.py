"""The admin panel on PostgreSQL, Redis and a real worker: login on every page and action,
CSRF on every form, the pages, acknowledge, controls recorded with who, and Re-run."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from werkzeug.security import generate_password_hash

import celeryconfig
from app.extensions import db
from app.models import AlertRecord, OperatorAction, Portfolio, TaskRun
from tests.integration.conftest import start_all_queue_worker
from tests.integration.test_web_metrics import make_app, seed, wipe

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"
SECRET_KEY = "test-secret-key-never-rendered"

GET_ROUTES = [
    "/admin/",
    "/admin/decisions",
    "/admin/settings",
    "/admin/positions",
    "/admin/orders",
    "/admin/orders/1",
    "/admin/fills",
    "/admin/signals",
    "/admin/alerts",
    "/admin/tasks",
    "/admin/tasks/some-task-id",
    "/admin/controls",
]
POST_ROUTES = [
    "/admin/logout",
    "/admin/alerts/1/acknowledge",
    "/admin/tasks/some-task-id/rerun",
    "/admin/controls/run-pipeline",
    "/admin/controls/halt",
    "/admin/controls/resume",
    "/admin/controls/release-drawdown",
    "/admin/controls/paper-reset",
]
PUBLIC = {"/admin/login", "/admin/static/<path:filename>"}


@pytest.fixture(scope="module")
def worker(start_process):
    return start_all_queue_worker(start_process, "admin")


def build_app(stack_env, **overrides):
    settings = {
        "redis_url": stack_env["REDIS_URL"],
        "redis_key_prefix": stack_env["REDIS_KEY_PREFIX"],
        "state_dir": stack_env["STATE_DIR"],
        "admin_password": PASSWORD,
        "secret_key": SECRET_KEY,
    }
    settings.update(overrides)
    return make_app(settings.pop("database_url", stack_env["DATABASE_URL"]), **settings)


@pytest.fixture
def app(stack_env, engine):
    wipe(engine)
    app = build_app(stack_env)
    yield app
    app.extensions["celery"].close()


@pytest.fixture
def client(app):
    return app.test_client()


def token_in(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def login(client, username: str = "admin", password: str = PASSWORD):
    form = client.get("/admin/login").get_data(as_text=True)
    data = {"csrf_token": token_in(form), "username": username, "password": password}
    return client.post("/admin/login", data=data)


@pytest.fixture
def admin(client):
    """A logged-in client and its CSRF token."""
    assert login(client).status_code == 302
    token = token_in(client.get("/admin/controls").get_data(as_text=True))
    return client, token


def snapshot(engine) -> dict:
    """What a rejected POST must leave as it was."""
    with engine.connect() as conn:
        return {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("operator_actions", "task_runs", "alerts", "portfolios")
        } | {
            "acknowledged": conn.execute(
                text("SELECT count(*) FROM alerts WHERE acknowledged_at IS NOT NULL")
            ).scalar_one(),
            "halted": conn.execute(
                text("SELECT count(*) FROM portfolios WHERE halted")
            ).scalar_one(),
        }


@pytest.fixture
def world(app, engine):
    """Rows every POST route could touch: an alert (id 1), a task run, a halted portfolio."""
    seed(datetime.now(UTC))
    with db.transaction() as session:
        session.add(
            TaskRun(
                task_id="some-task-id",
                name=celeryconfig.REFRESH_MARKETS_TASK,
                args=[],
                kwargs={},
                state="SUCCESS",
                started_at=datetime.now(UTC),
            )
        )
    return snapshot(engine)


# Login everywhere ----------------------------------------------------------------------------


def test_the_lists_below_cover_every_admin_route(app):
    """A new admin route must be added to GET_ROUTES or POST_ROUTES, so the auth and CSRF
    tests below reach it."""
    adapter = app.url_map.bind("localhost")
    routes = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/admin") and rule.rule not in PUBLIC
        for method in rule.methods & {"GET", "POST"}
    }
    listed = {(adapter.match(route, "GET")[0], "GET") for route in GET_ROUTES} | {
        (adapter.match(route, "POST")[0], "POST") for route in POST_ROUTES
    }
    assert routes == listed


@pytest.mark.parametrize("route", GET_ROUTES)
def test_pages_redirect_to_login(client, route):
    response = client.get(route)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=")


@pytest.mark.parametrize("route", POST_ROUTES)
def test_actions_are_refused_without_login(client, world, engine, route):
    with client.session_transaction() as session:
        session["csrf_token"] = "known"  # a valid token alone does not log anyone in
    response = client.post(route, data={"csrf_token": "known", "reason": "x", "confirm": "RESET"})
    assert response.status_code == 403
    assert snapshot(engine) == world


@pytest.mark.parametrize("token", [None, "", "wrong-token"])
@pytest.mark.parametrize("route", POST_ROUTES)
def test_actions_need_the_sessions_csrf_token(admin, world, engine, route, token):
    client, _ = admin
    data = {"reason": "x", "confirm": "RESET"}
    if token is not None:
        data["csrf_token"] = token
    response = client.post(route, data=data)
    assert response.status_code == 400
    assert snapshot(engine) == world
    assert client.get("/admin/positions").status_code == 200  # still logged in


def test_login_form_needs_its_csrf_token(client):
    response = client.post("/admin/login", data={"username": "admin", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize(
    ("username", "password"),
    [("admin", "wrong"), ("root", PASSWORD), ("admin", ""), ("", "")],
)
def test_wrong_credentials_are_refused(client, username, password):
    response = login(client, username, password)
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_right_password_logs_in_with_a_safe_cookie(client):
    response = login(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/admin/positions").status_code == 200


def test_login_returns_to_the_page_asked_for_but_never_off_site(client):
    form = client.get("/admin/login?next=/admin/alerts").get_data(as_text=True)
    data = {"csrf_token": token_in(form), "username": "admin", "password": PASSWORD}
    assert client.post("/admin/login", data={**data, "next": "/admin/alerts"}).headers[
        "Location"
    ] == ("/admin/alerts")
    client.post("/admin/logout", data={"csrf_token": token_in(client.get("/admin/").text)})
    form = client.get("/admin/login").get_data(as_text=True)
    data["csrf_token"] = token_in(form)
    response = client.post("/admin/login", data={**data, "next": "https://evil.example/"})
    assert response.headers["Location"] == "/admin/"


@pytest.mark.parametrize("method", ["scrypt", "pbkdf2:sha256:1000"])
def test_a_hashed_admin_password_works(stack_env, engine, method):
    wipe(engine)
    hashed = generate_password_hash("hashed secret", method=method)
    app = build_app(stack_env, admin_password=hashed)
    client = app.test_client()
    assert login(client, password=hashed).status_code == 401  # the hash itself is no password
    assert login(client, password="hashed secret").status_code == 302
    assert client.get("/admin/positions").status_code == 200
    app.extensions["celery"].close()


def test_without_admin_password_the_panel_is_disabled(stack_env, engine):
    app = build_app(stack_env, admin_password=None)
    client = app.test_client()
    page = client.get("/admin/login").get_data(as_text=True)
    assert "disabled until" in page and "ADMIN_PASSWORD" in page
    with client.session_transaction() as session:
        session["csrf_token"] = "t"
    for password in ("", "admin", "password"):
        data = {"csrf_token": "t", "username": "admin", "password": password}
        assert client.post("/admin/login", data=data).status_code == 403
    assert client.get("/admin/").status_code == 302
    app.extensions["celery"].close()


def test_logout_ends_the_session(admin):
    client, token = admin
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/admin/").status_code == 302


# Pages ---------------------------------------------------------------------------------------


def test_pages_show_the_data_and_no_secret(admin, world, worker):
    client, _ = admin
    ids = {"order_id": 1}
    pages = {
        "/admin/": ["<polyline", "950.00 USDT", "HALTED", "Flower", "<rect", 'class="axis-y"'],
        "/admin/positions": ["BTCUSDT", "4998"],
        "/admin/orders": ["filled", "/admin/orders/1"],
        "/admin/fills": ["5100"],
        "/admin/signals": [
            "rejected</span> by exposure",
            "<th>exposure</th>",
            "61.00 %",
            "order #1 trace",
        ],
        f"/admin/orders/{ids['order_id']}": ["cdb-1", "Risk decision", "layer6"],
        "/admin/alerts": ["RISK_LIMIT", "Acknowledge"],
        "/admin/controls": ["HALTED", "test halt", "Halt trading"],
        "/admin/tasks": ["some-task-id"],
        "/admin/tasks/some-task-id": ["Re-run", celeryconfig.REFRESH_MARKETS_TASK],
    }
    for route, expected in pages.items():
        response = client.get(route)
        html = response.get_data(as_text=True)
        assert response.status_code == 200, route
        for fragment in expected:
            assert fragment in html, (route, fragment)
        assert PASSWORD not in html and SECRET_KEY not in html
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert re.search(r"Workers</h2>\s*<p class=\"big pos\">[1-9]", dashboard), "worker not seen"


def test_unknown_order_and_task_are_404(admin):
    client, _ = admin
    assert client.get("/admin/orders/999").status_code == 404
    assert client.get("/admin/tasks/nope").status_code == 404


def add_task_runs(
    count: int, name: str, state: str, start: datetime, with_args: bool = True
) -> list[str]:
    ids = []
    with db.transaction() as session:
        for n in range(count):
            task_id = f"{state.lower()}-{n}-{uuid.uuid4().hex[:6]}"
            ids.append(task_id)
            session.add(
                TaskRun(
                    task_id=task_id,
                    name=name,
                    args=[n] if with_args else [],
                    kwargs={},
                    state=state,
                    started_at=start + timedelta(seconds=n),
                    error="ValueError: bad payload" if state == "FAILURE" else None,
                    traceback="Traceback (most recent call last): ..."
                    if state == "FAILURE"
                    else None,
                )
            )
    return ids


def test_task_runs_filter_and_paginate(admin):
    client, _ = admin
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ok = add_task_runs(60, celeryconfig.SIGNALS_TASK, "SUCCESS", start)
    failed = add_task_runs(3, celeryconfig.RISK_TASK, "FAILURE", start + timedelta(days=1))

    first = client.get("/admin/tasks").get_data(as_text=True)
    assert first.count("<tr><td>") == 50 and "older &rarr;" in first
    second = client.get("/admin/tasks?page=2").get_data(as_text=True)
    assert second.count("<tr><td>") == 13 and "older &rarr;" not in second

    only_failed = client.get(f"/admin/tasks?state=FAILURE&name={celeryconfig.RISK_TASK}").text
    assert all(task_id in only_failed for task_id in failed)
    assert not any(task_id in only_failed for task_id in ok)

    window = client.get("/admin/tasks?since=2026-01-01T00:00:10&until=2026-01-01T00:00:20").text
    assert [task_id for task_id in ok if task_id in window] == ok[10:20]

    detail = client.get(f"/admin/tasks/{failed[0]}").get_data(as_text=True)
    assert "ValueError: bad payload" in detail and "Traceback" in detail

    bad = client.get("/admin/tasks?since=yesterday")
    assert bad.status_code == 400 and "since=&#39;yesterday&#39;" in bad.get_data(as_text=True)
    assert client.get("/admin/tasks?state=LOST").status_code == 400


def test_orders_paginate(admin, world):
    client, _ = admin
    page = client.get("/admin/orders?page=2").get_data(as_text=True)
    assert "No orders." in page and "&larr; newer" in page


# Actions -------------------------------------------------------------------------------------


def actions() -> list[OperatorAction]:
    db.session.remove()
    with db.transaction() as session:
        return list(session.scalars(select(OperatorAction).order_by(OperatorAction.id)))


def test_acknowledge_sets_the_time_and_records_who(admin, world):
    client, token = admin
    response = client.post("/admin/alerts/1/acknowledge?page=1", data={"csrf_token": token})
    assert response.status_code == 302
    with db.transaction() as session:
        alert = session.get_one(AlertRecord, 1)
        first = alert.acknowledged_at
        assert first is not None
    still_open = client.get("/admin/alerts?open=1").get_data(as_text=True)
    assert "/admin/alerts/1/acknowledge" not in still_open
    assert "/admin/alerts/2/acknowledge" in still_open
    client.post("/admin/alerts/1/acknowledge", data={"csrf_token": token})
    with db.transaction() as session:
        assert session.get_one(AlertRecord, 1).acknowledged_at == first  # the first time stays
    [action] = actions()
    assert (action.action, action.username, action.target) == ("acknowledge", "admin", "1")
    assert (
        client.post("/admin/alerts/999/acknowledge", data={"csrf_token": token}).status_code == 404
    )


def portfolio() -> Portfolio:
    db.session.remove()
    with db.transaction() as session:
        return session.scalars(select(Portfolio)).one()


def test_halt_and_resume_from_the_controls_page_record_who(admin):
    client, token = admin
    assert client.post("/admin/controls/halt", data={"csrf_token": token}).status_code == 400
    assert actions() == []

    response = client.post(
        "/admin/controls/halt", data={"csrf_token": token, "reason": "exchange maintenance"}
    )
    assert response.status_code == 302
    assert portfolio().halted and portfolio().halt_reason == "operator: exchange maintenance"
    assert client.post("/admin/controls/resume", data={"csrf_token": token}).status_code == 302
    assert not portfolio().halted
    client.post("/admin/controls/release-drawdown", data={"csrf_token": token})

    recorded = [(a.action, a.username, a.reason, a.outcome["changed"]) for a in actions()]
    assert recorded == [
        ("halt", "admin", "exchange maintenance", True),
        ("resume", "admin", None, True),
        ("release-drawdown", "admin", None, False),
    ]
    with db.transaction() as session:
        messages = session.scalars(
            select(AlertRecord.message).where(AlertRecord.source == "operator")
        ).all()
    assert any("exchange maintenance" in m for m in messages)
    page = client.get("/admin/controls").get_data(as_text=True)
    assert "exchange maintenance" in page and "ACTIVE" in page


def wait_for_state(task_id: str, timeout: float = 60) -> TaskRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.remove()  # a fresh identity map: see what the worker wrote
        with db.transaction() as session:
            run = session.scalar(select(TaskRun).where(TaskRun.task_id == task_id))
            if run is not None and run.state not in ("PENDING", "STARTED"):
                return run
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} did not finish within {timeout}s")


def test_rerun_sends_a_new_linked_run_that_succeeds(admin, worker, sim):
    client, token = admin
    now = datetime.now(UTC)
    [original] = add_task_runs(1, celeryconfig.REFRESH_MARKETS_TASK, "FAILURE", now, False)
    response = client.post(f"/admin/tasks/{original}/rerun", data={"csrf_token": token})
    assert response.status_code == 302
    new_id = response.headers["Location"].rsplit("/", 1)[1]
    assert new_id != original

    run = wait_for_state(new_id)
    assert run.rerun_of == original
    assert run.state == "SUCCESS", (run.error, worker.output())
    page = client.get(f"/admin/tasks/{new_id}").get_data(as_text=True)
    assert "state-success" in page and "data-refresh" not in page
    assert f'class="original" href="/admin/tasks/{original}"' in page
    assert new_id in client.get(f"/admin/tasks/{original}").get_data(as_text=True)
    [action] = actions()
    assert (action.action, action.username, action.target) == ("rerun", "admin", original)
    assert client.post("/admin/tasks/unknown/rerun", data={"csrf_token": token}).status_code == 404


def test_an_unfinished_run_reloads_itself(admin):
    client, _ = admin
    [pending] = add_task_runs(1, celeryconfig.SIGNALS_TASK, "PENDING", datetime.now(UTC))
    assert 'data-refresh="2"' in client.get(f"/admin/tasks/{pending}").get_data(as_text=True)


def test_run_pipeline_now_sends_an_admin_market_data_run(admin, worker, engine):
    client, token = admin
    response = client.post("/admin/controls/run-pipeline", data={"csrf_token": token})
    assert response.status_code == 302
    task_id = response.headers["Location"].rsplit("/", 1)[1]
    run = wait_for_state(task_id)
    assert (run.name, run.kwargs) == (celeryconfig.MARKET_DATA_TASK, {"trigger": "admin"})
    with engine.connect() as conn:
        trigger = conn.execute(
            text("SELECT trigger FROM market_data_runs WHERE run_key = :k"), {"k": task_id}
        ).scalar_one()
    assert trigger == "admin"
    [action] = actions()
    assert (action.action, action.username, action.target) == ("run-pipeline", "admin", task_id)
