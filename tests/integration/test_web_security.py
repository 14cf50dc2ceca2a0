"""The web app's defences, on PostgreSQL: every admin route found in the URL map needs a
login and a CSRF token, every response carries the security headers, /health and /metrics
never show a secret; server-side sessions (logout, lifetime, idle timeout, a new session per
login); the login throttle; the proxy setting; the size of requests and form fields."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from werkzeug.routing.converters import AnyConverter

from app.extensions import db
from app.models import AdminSession, LoginAttempt
from app.web import health, limits, sessions, throttle
from app.web.admin.params import IdConverter, TaskIdConverter
from app.web.auth import SESSION_CSRF, SESSION_TOKEN
from app.web.security import CONTENT_SECURITY_POLICY, HEADERS
from tests.integration.test_web_admin import PASSWORD, build_app, login, token_in
from tests.integration.test_web_metrics import wipe

pytestmark = pytest.mark.integration

PUBLIC = {"auth.login", "admin.static"}


@pytest.fixture
def app(stack_env, engine):
    wipe(engine)
    app = build_app(stack_env)
    yield app
    app.extensions[health.MONITOR_KEY].stop()
    app.extensions["celery"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def admin(client):
    assert login(client).status_code == 302
    return client, token_in(client.get("/admin/controls").get_data(as_text=True))


def rows(model) -> list:
    db.session.remove()
    with db.transaction() as session:
        return list(session.scalars(select(model)))


def execute(engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def now() -> datetime:
    return datetime.now(UTC)


# Every admin route, from the URL map ---------------------------------------------------------


def admin_urls(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every admin route but the login and the static files,
    each converter given a value it accepts (every choice of an `any`)."""
    found = []
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin") or rule.endpoint in PUBLIC:
            continue
        choices: list[dict[str, object]] = [{}]
        for name, converter in rule._converters.items():
            if isinstance(converter, AnyConverter):
                options = sorted(converter.items)
            elif isinstance(converter, IdConverter):
                options = [1]
            elif isinstance(converter, TaskIdConverter):
                options = ["some-task-id"]
            else:
                options = ["x"]
            choices = [{**c, name: option} for c in choices for option in options]
        for values in choices:
            url = adapter.build(rule.endpoint, values)
            for method in sorted(rule.methods & {"GET", "POST"}):
                found.append((rule.endpoint, method, url))
    return found


def test_the_walk_finds_every_kind_of_admin_route(app):
    urls = admin_urls(app)
    endpoints = {endpoint for endpoint, _, _ in urls}
    assert {"admin.dashboard", "admin.control", "admin.rerun", "auth.logout"} <= endpoints
    assert ("admin.control", "POST", "/admin/controls/release-drawdown") in urls
    assert len(urls) >= 20


def test_every_admin_route_needs_a_login(app, client):
    for endpoint, method, url in admin_urls(app):
        if method == "GET":
            response = client.get(url)
            assert response.status_code == 302, url
            assert response.headers["Location"].startswith("/admin/login?next="), url
        else:
            with client.session_transaction() as cookie:
                cookie[SESSION_CSRF] = "known"  # a valid CSRF token logs no one in
                cookie[SESSION_TOKEN] = "forged-session-token"
            response = client.post(url, data={"csrf_token": "known", "reason": "x"})
            assert response.status_code == 403, (endpoint, url)
    assert rows(AdminSession) == []


def test_every_admin_post_needs_the_csrf_token(app, admin, engine):
    client, token = admin
    for endpoint, method, url in admin_urls(app):
        if method != "POST":
            continue
        for sent in (None, "", token + "x"):
            data = {"reason": "x", "confirm": "RESET"}
            if sent is not None:
                data["csrf_token"] = sent
            response = client.post(url, data=data)
            assert response.status_code == 400, (endpoint, url, sent)
            assert "CSRF token" in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 200  # still logged in
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM operator_actions")).scalar_one() == 0


def assert_headers(response, url: str) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (url, name)
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY


def test_every_response_carries_the_security_headers(app, admin):
    client, token = admin
    anonymous = app.test_client()
    for _, method, url in admin_urls(app):
        for who in (anonymous, client):
            if method == "GET":
                response = who.get(url)
            else:
                response = who.post(url, data={"csrf_token": "wrong"})
            assert_headers(response, url)
            if response.status_code < 300 or url.startswith("/admin"):
                assert response.headers.get("Cache-Control") == "no-store", url
    others = [
        anonymous.get("/health/live"),
        anonymous.get("/health"),
        anonymous.get("/metrics"),
        anonymous.get("/admin/login"),
        anonymous.get("/nowhere"),
        client.get("/admin/orders?page=x"),  # 400
        client.post("/admin/controls/halt", data={"csrf_token": token, "reason": "x" * 501}),
        client.post("/admin/controls/halt", data={"csrf_token": token, "reason": "x" * 70_000}),
    ]
    assert [r.status_code for r in others[-3:]] == [400, 400, 413]
    for response in others:
        assert_headers(response, response.request.path)


# No secret on /health or /metrics -------------------------------------------------------------

SECRETS = {
    "redis_password": "redis-pw-7d1e0c",
    "postgres_password": "pg-pw-5a9b3f",
    "mexc_api_key": "mexc-key-1f2e3d",
    "mexc_api_secret": "mexc-secret-4c5b6a",
    "admin_password": "admin-pw-9e8d7c6b",
    "flower_basic_auth": "ops:flower-pw-2b3c4d",
    "gf_security_admin_password": "grafana-pw-0a1b2c",
    "secret_key": "session-key-3e4f5a6b7c8d9e0f1a2b3c4d",
}


def test_health_and_metrics_never_show_a_secret(stack_env, engine, tmp_path):
    wipe(engine)
    with_password = stack_env["DATABASE_URL"].replace("postgres@", "postgres:url-pw-8f7e6d@")
    app = build_app(stack_env, database_url=with_password, state_dir=str(tmp_path), **SECRETS)
    client = app.test_client()
    values = [*SECRETS.values(), "flower-pw-2b3c4d", "url-pw-8f7e6d"]
    assert set(app.extensions["settings"].secret_values()) >= set(values) - {"flower-pw-2b3c4d"}
    for url in ("/health", "/health/live", "/metrics", "/metrics", "/admin/login", "/nowhere"):
        response = client.get(url)
        shown = response.get_data(as_text=True) + str(response.headers)
        for value in values:
            assert value not in shown, (url, value)
    body = client.get("/health").get_json()
    assert body["checks"]["broker"]["status"] == "fail"  # Redis has no such password
    app.extensions[health.MONITOR_KEY].stop()
    app.extensions["celery"].close()


# Server-side sessions -------------------------------------------------------------------------


def cookie_of(app, client) -> dict:
    cookie = client.get_cookie("cdb_session")
    assert cookie is not None
    return app.session_interface.get_signing_serializer(app).loads(cookie.value)


def test_the_cookie_carries_only_a_token_the_database_knows_by_its_hash(app, admin):
    client, _ = admin
    content = cookie_of(app, client)
    assert set(content) - {"_permanent"} == {SESSION_TOKEN, SESSION_CSRF}  # Flask's own flag
    [row] = rows(AdminSession)
    assert row.id == hashlib.sha256(content[SESSION_TOKEN].encode()).hexdigest()
    assert row.id != content[SESSION_TOKEN] and row.username == "admin"
    assert row.expires_at - row.created_at == timedelta(hours=8)
    assert row.remote_addr == "127.0.0.1" and row.revoked_at is None


def test_logout_revokes_the_session_and_the_old_cookie_no_longer_works(app, admin):
    client, token = admin
    stolen = client.get_cookie("cdb_session").value
    assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 302
    assert "You are logged out." in client.get("/admin/login").get_data(as_text=True)
    [row] = rows(AdminSession)
    assert row.revoked_at is not None
    replay = app.test_client()
    replay.set_cookie("cdb_session", stolen)
    response = replay.get("/admin/positions")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    assert replay.post("/admin/controls/resume", data={"csrf_token": token}).status_code == 403


def test_requests_do_not_extend_the_cookie(admin):
    client, _ = admin
    client.get("/admin/")  # the CSRF token exists by now
    assert "Set-Cookie" not in client.get("/admin/positions").headers


@pytest.mark.parametrize(
    ("column", "ago", "reason"),
    [
        ("expires_at", timedelta(seconds=1), "a session lasts 8 h at most"),
        ("last_seen_at", timedelta(minutes=31), "nothing was done for 30 min"),
    ],
)
def test_a_session_ends_after_8_h_or_30_min_idle(admin, engine, column, ago, reason):
    client, _ = admin
    execute(engine, f"UPDATE admin_sessions SET {column} = :t", t=now() - ago)
    response = client.get("/admin/orders")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Your session has ended ({reason}): log in again." in page
    assert client.get("/admin/orders").status_code == 302  # and stays ended


def test_the_absolute_lifetime_holds_however_busy(admin, engine):
    client, _ = admin
    execute(
        engine,
        "UPDATE admin_sessions SET created_at = :c, expires_at = :e",
        c=now() - timedelta(hours=8) + timedelta(seconds=1),
        e=now() + timedelta(seconds=1),
    )
    assert client.get("/admin/positions").status_code == 200  # busy until the end ...
    execute(engine, "UPDATE admin_sessions SET expires_at = :e", e=now())
    assert client.get("/admin/positions").status_code == 302  # ... and not a second more


def test_use_moves_the_idle_deadline(admin, engine):
    client, _ = admin
    execute(engine, "UPDATE admin_sessions SET last_seen_at = :t", t=now() - timedelta(minutes=29))
    assert client.get("/admin/positions").status_code == 200
    [row] = rows(AdminSession)
    assert now() - row.last_seen_at < timedelta(seconds=5)


def test_each_login_makes_a_new_session_and_a_planted_token_is_worthless(app, client):
    with client.session_transaction() as cookie:
        cookie[SESSION_TOKEN] = "planted-by-someone-else"
    assert login(client).status_code == 302
    first = cookie_of(app, client)[SESSION_TOKEN]
    assert first != "planted-by-someone-else"
    assert login(client).status_code == 302
    second = cookie_of(app, client)[SESSION_TOKEN]
    assert second != first
    states = {row.id: row.revoked_at for row in rows(AdminSession)}
    assert states[sessions.token_id(first)] is not None  # the browser's old one is revoked
    assert states[sessions.token_id(second)] is None
    assert sessions.token_id("planted-by-someone-else") not in states


def test_a_renamed_admin_username_ends_the_sessions(stack_env, admin):
    client, _ = admin
    renamed = build_app(stack_env, admin_username="operator")
    other = renamed.test_client()
    other.set_cookie("cdb_session", client.get_cookie("cdb_session").value)
    assert other.get("/admin/").status_code == 302
    renamed.extensions["celery"].close()


def test_a_changed_admin_password_ends_the_sessions(stack_env, app, admin):
    client, _ = admin
    cookie = client.get_cookie("cdb_session").value
    [row] = rows(AdminSession)
    token = cookie_of(app, client)[SESSION_TOKEN]
    assert row.credential == sessions.credential_mark(token, PASSWORD)
    assert PASSWORD not in row.credential
    same = build_app(stack_env)  # a restart with the same password: still logged in
    kept = same.test_client()
    kept.set_cookie("cdb_session", cookie)
    assert kept.get("/admin/").status_code == 200
    changed = build_app(stack_env, admin_password=PASSWORD + "-rotated")
    other = changed.test_client()
    other.set_cookie("cdb_session", cookie)
    response = other.get("/admin/positions")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    page = other.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your session has ended (ADMIN_PASSWORD has changed): log in again." in page
    assert login(other, password=PASSWORD + "-rotated").status_code == 302
    assert other.get("/admin/positions").status_code == 200
    for app in (same, changed):
        app.extensions[health.MONITOR_KEY].stop()
        app.extensions["celery"].close()


def test_a_session_from_before_the_password_was_remembered_ends(admin, engine):
    client, _ = admin
    execute(engine, "UPDATE admin_sessions SET credential = NULL")
    response = client.get("/admin/orders")
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your session has ended (ADMIN_PASSWORD has changed): log in again." in page


def test_old_sessions_are_pruned_at_login(client):
    long_ago = now() - timedelta(days=3)
    with db.transaction() as session:
        for n, created in enumerate((long_ago, now() - timedelta(hours=2))):
            session.add(
                AdminSession(
                    id=f"{n:064d}",
                    username="admin",
                    created_at=created,
                    last_seen_at=created,
                    expires_at=created + sessions.ABSOLUTE_LIFETIME,
                    revoked_at=None,
                    remote_addr=None,
                )
            )
    assert login(client).status_code == 302
    kept = {row.id for row in rows(AdminSession)}
    assert f"{0:064d}" not in kept and f"{1:064d}" in kept and len(kept) == 2


@pytest.mark.parametrize("secure", [True, False])
def test_the_cookie_is_secure_as_configured(stack_env, engine, secure):
    wipe(engine)
    app = build_app(stack_env, session_cookie_secure=secure)
    client = app.test_client()
    form = client.get("/admin/login", base_url="https://localhost").get_data(as_text=True)
    data = {"csrf_token": token_in(form), "username": "admin", "password": PASSWORD}
    response = client.post("/admin/login", data=data, base_url="https://localhost")
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure
    app.extensions["celery"].close()


def test_production_cookies_are_secure_by_default(stack_env):
    app = build_app(
        stack_env,
        cdb_env="production",
        database_url=stack_env["DATABASE_URL"],
        secret_key="a-production-strength-session-key-0123456789",
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True
    app.extensions["celery"].close()


# The login throttle ---------------------------------------------------------------------------


GUESS = "bad-guess-5150"


def attempt(client, password: str = GUESS, username: str = "admin", remote: str = "10.0.0.1"):
    environ = {"REMOTE_ADDR": remote}
    form = client.get("/admin/login", environ_base=environ).get_data(as_text=True)
    data = {"csrf_token": token_in(form), "username": username, "password": password}
    return client.post("/admin/login", data=data, environ_base=environ)


def test_after_five_failures_each_attempt_waits_twice_as_long(client, caplog):
    caplog.set_level(logging.INFO, logger="app.web.auth")
    assert [attempt(client).status_code for _ in range(5)] == [401] * 5
    waits = []
    for _ in range(4):
        response = attempt(client, password=PASSWORD)  # the right one: not even checked
        assert response.status_code == 429
        waits.append(int(response.headers["Retry-After"]))
    assert waits == [1, 2, 4, 8]
    page = response.get_data(as_text=True)
    assert "Too many failed logins" in page and "wait 8 s before trying again" in page
    recorded = rows(LoginAttempt)
    assert len(recorded) == 9 and not any(a.success for a in recorded)
    assert {(a.remote_addr, a.username) for a in recorded} == {("10.0.0.1", "admin")}
    refused = [r for r in caplog.records if r.getMessage().startswith("admin login refused")]
    assert len(refused) == 9
    assert all(r.username == "admin" and r.remote == "10.0.0.1" for r in refused)
    assert not any(PASSWORD in str(vars(r)) or GUESS in str(vars(r)) for r in refused)


def test_the_wait_is_capped_at_15_minutes(client):
    with db.transaction() as session:
        for n in range(40):
            at = now() - timedelta(seconds=n)
            session.add(LoginAttempt(at=at, remote_addr="10.0.0.9", username="x", success=False))
    response = attempt(client, remote="10.0.0.9")
    assert response.status_code == 429
    assert 890 <= int(response.headers["Retry-After"]) <= 900
    assert "15 min" in response.get_data(as_text=True)


def test_throttled_per_username_from_any_address(client):
    for n in range(5):
        assert attempt(client, remote=f"10.0.1.{n}").status_code == 401
    response = attempt(client, remote="10.0.1.99")
    assert response.status_code == 429
    assert "for this username" in response.get_data(as_text=True)
    assert attempt(client, username="someone-else", remote="10.0.1.98").status_code == 401


def test_throttled_per_address_whatever_the_username(client):
    for n in range(5):
        assert attempt(client, username=f"user{n}", remote="10.0.2.1").status_code == 401
    response = attempt(client, username="admin", remote="10.0.2.1")
    assert response.status_code == 429
    assert "from your address" in response.get_data(as_text=True)
    assert attempt(client, password=PASSWORD, remote="10.0.2.2").status_code == 302


def test_old_failures_and_a_success_reset_the_count(client, engine):
    for _ in range(4):
        attempt(client)
    assert attempt(client, password=PASSWORD).status_code == 302
    for _ in range(4):
        assert attempt(client).status_code == 401  # counted since the success
    assert attempt(client).status_code == 401  # the fifth failure
    assert attempt(client).status_code == 429
    execute(engine, "UPDATE login_attempts SET at = at - interval '16 minutes'")
    assert attempt(client, password=PASSWORD).status_code == 302  # out of the window


def test_backoff_doubles_from_the_fifth_failure():
    assert [throttle.backoff(n).total_seconds() for n in (0, 4, 5, 6, 7, 14, 15, 99)] == [
        0,
        0,
        1,
        2,
        4,
        512,
        900,
        900,
    ]


# Behind a proxy -------------------------------------------------------------------------------


def test_forwarded_for_counts_only_with_trusted_proxies(stack_env, engine):
    wipe(engine)
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    for proxies, expected in ((0, "127.0.0.1"), (1, "203.0.113.9")):
        app = build_app(stack_env, trusted_proxies=proxies)
        client = app.test_client()
        form = client.get("/admin/login", headers=headers).get_data(as_text=True)
        data = {"csrf_token": token_in(form), "username": "admin", "password": "wrong"}
        assert client.post("/admin/login", data=data, headers=headers).status_code == 401
        assert rows(LoginAttempt)[-1].remote_addr == expected
        app.extensions["celery"].close()
    # Behind the proxy, one client's failures do not throttle another.
    app = build_app(stack_env, trusted_proxies=1)
    client = app.test_client()
    for _ in range(6):
        form = client.get("/admin/login").get_data(as_text=True)
        data = {"csrf_token": token_in(form), "username": "nobody", "password": "wrong"}
        client.post("/admin/login", data=data, headers={"X-Forwarded-For": "203.0.113.7"})
    assert attempt(client, password=PASSWORD, remote="127.0.0.1").status_code == 302
    app.extensions["celery"].close()


# Request and field sizes ----------------------------------------------------------------------


def test_a_huge_halt_reason_is_refused_readably_and_nothing_is_stored(admin, engine):
    client, token = admin
    for size, status, says in (
        (600_000, 413, "larger than 64 KB"),
        (5_000, 400, "reason= is 5000 characters long; at most 500 are accepted"),
        (501, 400, "reason= is 501 characters long; at most 500 are accepted"),
    ):
        response = client.post(
            "/admin/controls/halt", data={"csrf_token": token, "reason": "x" * size}
        )
        assert response.status_code == status, size
        page = response.get_data(as_text=True)
        assert says in page and "x" * 100 not in page
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM operator_actions")).scalar_one() == 0
    response = client.post("/admin/controls/halt", data={"csrf_token": token, "reason": "x" * 500})
    assert response.status_code == 302


@pytest.mark.parametrize(
    ("route", "field", "value", "says"),
    [
        ("/admin/controls/halt", "reason", "stop\x00now", "reason='stop\\x00now' holds control"),
        ("/admin/controls/paper-reset", "confirm", "R" * 33, "confirm= is 33 characters"),
        ("/admin/controls/paper-reset", "reason", "r" * 501, "reason= is 501 characters"),
        ("/admin/controls/resume", "anything", "a" * 1001, "anything= is 1001 characters"),
    ],
)
def test_every_form_field_has_its_bound(admin, engine, route, field, value, says):
    client, token = admin
    response = client.post(route, data={"csrf_token": token, field: value})
    assert response.status_code == 400
    assert says in response.get_data(as_text=True).replace("&#39;", "'")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM operator_actions")).scalar_one() == 0


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("username", "a" * 65, "username= is 65 characters long; at most 64"),
        ("username", "ad\x00min", "holds control characters"),
        ("password", "p" * 1025, "password= is 1025 characters long; at most 1024"),
        ("next", "/admin/\r\nSet-Cookie: x=1", "holds control characters"),
    ],
)
def test_login_fields_have_their_bounds(client, field, value, says):
    form = client.get("/admin/login").get_data(as_text=True)
    data = {"csrf_token": token_in(form), "username": "admin", "password": PASSWORD, field: value}
    response = client.post("/admin/login", data=data)
    assert response.status_code == 400
    assert says in response.get_data(as_text=True)
    assert rows(AdminSession) == [] and rows(LoginAttempt) == []


def test_query_values_have_a_bound(admin):
    client, _ = admin
    response = client.get("/admin/tasks?since=" + "9" * 201)
    assert response.status_code == 400
    assert "since= is 201 characters long; at most 200" in response.get_data(as_text=True)
    assert client.get("/admin/decisions?" + "k" * 65 + "=1").status_code == 400
    assert client.get("/admin/tasks?since=2026-01-01").status_code == 200


def test_the_request_size_limit(app):
    assert app.config["MAX_CONTENT_LENGTH"] == limits.MAX_CONTENT_LENGTH == 64 * 1024
    client = app.test_client()
    response = client.post("/admin/login", data={"csrf_token": "x", "password": "p" * 70_000})
    assert response.status_code == 413
    assert rows(LoginAttempt) == []


def test_the_login_page_states_the_production_minimum(stack_env):
    app = build_app(stack_env, admin_password=None)
    page = app.test_client().get("/admin/login").get_data(as_text=True)
    assert "at least 12 characters when <code>CDB_ENV=production</code>" in page
    app.extensions["celery"].close()


def test_a_database_down_is_a_503_not_a_500(stack_env, engine):
    app = build_app(stack_env, database_url="postgresql://postgres@127.0.0.1:1/cdb")
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie[SESSION_TOKEN] = "some-token"
    response = client.get("/admin/")
    assert response.status_code == 503
    assert "The database does not answer" in response.get_data(as_text=True)
    assert_headers(response, "/admin/")
    page = app.test_client().get("/admin/login")  # no session to look up: the form shows
    assert page.status_code == 200
    app.extensions["celery"].close()
