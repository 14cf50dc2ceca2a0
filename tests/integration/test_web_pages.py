"""Every admin page for people and under a strict CSP: numbers formatted (symbol precision,
USDT with two decimals and the exact value in the title, percents, one ISO time format), the
security headers, nothing inline, the settings page, the login hint, and hostile query values
answered with 400/404, never 500."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from app import create_app
from app.config import load_settings
from app.extensions import db
from app.models import AlertRecord, EquitySnapshot
from app.web.security import CONTENT_SECURITY_POLICY
from tests.conftest import REDIS_URL
from tests.integration.test_web_admin import PASSWORD, build_app, login, token_in
from tests.integration.test_web_decisions import decision_world
from tests.integration.test_web_metrics import wipe

pytestmark = pytest.mark.integration

PAGES = [
    "/admin/",
    "/admin/?range=24h",
    "/admin/decisions",
    "/admin/positions",
    "/admin/orders",
    "/admin/orders/1",
    "/admin/fills",
    "/admin/signals",
    "/admin/alerts",
    "/admin/tasks",
    "/admin/controls",
    "/admin/settings",
]


@pytest.fixture
def app(stack_env, engine):
    wipe(engine)
    app = build_app(stack_env)
    yield app
    app.extensions["celery"].close()


@pytest.fixture
def admin(app):
    client = app.test_client()
    assert login(client).status_code == 302
    return client, token_in(client.get("/admin/controls").get_data(as_text=True))


@pytest.fixture
def world(app):
    now = datetime.now(UTC)
    found = decision_world(now)
    with db.transaction() as session:
        for hours, equity, drawdown in (
            (5, "1000", "0"),
            (3, "999.64", "0.00036"),
            (1, "1000.1", "0"),
        ):
            session.add(
                EquitySnapshot(
                    portfolio_id=1,
                    run_id=None,
                    equity=D(equity),
                    cash=D("900"),
                    exposure=D(equity) - D("900"),
                    drawdown_pct=D(drawdown),
                    daily_pnl=D(equity) - D("1000"),
                    taken_at=now - timedelta(hours=hours),
                )
            )
        session.add(
            AlertRecord(
                code="DATA_STALE", level="WARNING", message="stale", source="risk", created_at=now
            )
        )
    return found


# Numbers for people ----------------------------------------------------------------------------


def test_numbers_are_formatted_for_people(admin, world):
    client, _ = admin
    orders = client.get("/admin/orders").get_data(as_text=True)
    # price at BTCUSDT's 2 decimals, quantity at its 6, exact values in the title
    assert 'title="5100.123456">5100.12</span>' in orders
    assert ">0.019607</span>" in orders
    # requested and filled quantity, notional and fee in USDT with two decimals
    assert "Requested qty" in orders and "Filled qty" in orders
    assert 'title="99.99812 USDT">100.00 USDT</span>' in orders
    assert 'title="0.09999812 USDT">0.10 USDT</span>' in orders

    trace = client.get(f"/admin/orders/{world['order_id']}").get_data(as_text=True)
    assert "<th>exposure</th><td" in trace and "9.99 %" in trace  # a fraction as a percent
    assert "<th>halted</th><td" in trace and ">no<" in trace  # a flag as yes/no
    assert '<th>exposure before</th><td title="0E-65">0.00 USDT</td>' in trace
    assert 'stop <span title="4998.1209868812345678901234">4998.12</span>' in trace
    assert 'title="0.00012 %"' not in trace and "0.01 %" in trace  # slippage 0.00012 = 0.012 %

    dashboard = client.get("/admin/").get_data(as_text=True)
    assert 'title="900.00374 USDT">900.00 USDT</span>' in dashboard


@pytest.mark.parametrize("route", PAGES)
def test_no_raw_decimals_and_one_time_format(admin, world, route):
    client, _ = admin
    response = client.get(route)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # what a person reads: no tags or attributes (exact values in titles may be long, CSRF
    # tokens are random), no task ids in <code>
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<code>.*?</code>", "", html))
    assert not re.search(r"\d[eE][-+]?\d", text), route  # no 0E-65
    assert not re.search(r"\d\.\d{9,}", text), route  # no 30-digit stops
    assert "+00:00" not in html and " UTC</" not in html, route
    assert not re.search(r"\d\d:\d\d:\d\d(?!Z)(?!\.\d)", text), route


def test_charts_have_axes_with_units_and_a_tiny_move_stays_tiny(admin, world):
    client, _ = admin
    html = client.get("/admin/").get_data(as_text=True)
    y_labels = re.findall(r'<text class="axis-y"[^>]*>([^<]+)</text>', html)
    x_labels = re.findall(r'<text class="axis-x"[^>]*>([^<]+)</text>', html)
    assert any(label.endswith(" USDT") for label in y_labels)
    assert any(label.endswith(" %") for label in y_labels)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d)?Z)?", x) for x in x_labels)
    equity = re.search(r'<svg class="chart equity".*?</svg>', html, re.S).group(0)
    ys = [
        float(y)
        for y in re.findall(r"[\d.]+,([\d.]+)", re.search(r'points="([^"]+)"', equity).group(1))
    ]
    ticks = [float(y) for y in re.findall(r'<text class="axis-y" x="[\d.]+" y="([\d.]+)"', equity)]
    assert max(ys) - min(ys) < 0.2 * (max(ticks) - min(ticks))  # 0.46 USDT on 1,000


# Settings and login ---------------------------------------------------------------------------


def test_settings_page_shows_values_sources_and_never_a_secret(
    stack_env, engine, monkeypatch, tmp_path
):
    wipe(engine)
    env_file = tmp_path / ".env"
    env_file.write_text("LOOKBACK_MINUTES=20\nMEXC_API_KEY=key-in-the-dotenv-file\n")
    monkeypatch.setenv("TOP_N", "7")
    monkeypatch.setenv("MAX_POSITION_PCT", "0.9")
    monkeypatch.setenv("MEXC_API_SECRET", "very-secret-value-123")
    monkeypatch.setenv("POSTGRES_PASSWORD", "pg-secret-xyz")
    db.dispose()
    settings = load_settings(
        env_file=env_file,
        database_url=stack_env["DATABASE_URL"].replace("postgres@", "postgres:url-pw-456@"),
        redis_url=REDIS_URL,
        redis_key_prefix=stack_env["REDIS_KEY_PREFIX"],
        state_dir=stack_env["STATE_DIR"],
        admin_password=PASSWORD,
        secret_key="settings-test-secret-key",
    )
    app = create_app(settings)
    app.testing = True
    client = app.test_client()
    assert login(client).status_code == 302
    response = client.get("/admin/settings")
    html = response.get_data(as_text=True)
    assert response.status_code == 200

    def row(name: str) -> str:
        found = re.search(rf'<tr id="{name}"[^>]*>(.*?)</tr>', html, re.S)
        assert found, name
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1))).strip()

    assert row("TOP_N").startswith("TOP_N 7 environment 10 1..100")
    assert row("LOOKBACK_MINUTES").startswith("LOOKBACK_MINUTES 20 .env 15 1..1440")
    assert "default (environment gave 0.9, outside the range)" in row("MAX_POSITION_PCT")
    assert "(10.00 %)" in row("MAX_POSITION_PCT") and "0.01..0.25" in row("MAX_POSITION_PCT")
    assert row("STRATEGY").startswith("STRATEGY momentum default momentum")
    assert row("MEXC_API_SECRET").startswith("MEXC_API_SECRET *** environment")
    assert row("MEXC_API_KEY").startswith("MEXC_API_KEY *** .env")
    for secret in (
        "very-secret-value-123",
        "key-in-the-dotenv-file",
        "pg-secret-xyz",
        "url-pw-456",
        PASSWORD,
        "settings-test-secret-key",
    ):
        assert secret not in html
    assert str(env_file) in html and stack_env["STATE_DIR"] in html
    assert "postgresql+psycopg://postgres:***@127.0.0.1" in html
    assert "Settings</a>" in html  # in the nav
    app.extensions["celery"].close()


def test_login_page_says_where_the_generated_password_is(stack_env, engine, tmp_path):
    wipe(engine)
    state = tmp_path / "state"
    state.mkdir()
    app = build_app(stack_env, state_dir=str(state))
    plain = app.test_client().get("/admin/login").get_data(as_text=True)
    assert "credentials.env" not in plain and "ADMIN_PASSWORD</code>" in plain
    credentials = state / "credentials.env"
    credentials.write_text(f"ADMIN_PASSWORD={PASSWORD}\nSECRET_KEY=abc\n")
    credentials.chmod(0o600)
    page = app.test_client().get("/admin/login").get_data(as_text=True)
    assert f"<code>{credentials}</code>" in page
    assert "generated the password for <strong>admin</strong>" in page
    assert PASSWORD not in page
    credentials.write_text("ADMIN_PASSWORD=an-older-generated-one\n")  # not the one in force
    stale = app.test_client().get("/admin/login").get_data(as_text=True)
    assert "generated the password" not in stale and "an-older-generated-one" not in stale
    app.extensions["celery"].close()


# Security headers and CSP ---------------------------------------------------------------------


def test_every_response_carries_the_security_headers(admin):
    client, _ = admin
    for route in (
        "/admin/",
        "/admin/login",
        "/admin/settings",
        "/health/live",
        "/metrics",
        "/admin/static/refresh.js",
        "/admin/nope",
    ):
        response = client.get(route)
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY, route
        assert response.headers["X-Frame-Options"] == "DENY", route
        assert response.headers["X-Content-Type-Options"] == "nosniff", route
        assert response.headers["Referrer-Policy"] == "same-origin", route
        if route.startswith("/admin/static"):
            assert response.headers.get("Cache-Control") != "no-store"
            assert "javascript" in response.headers["Content-Type"]
        elif route.startswith("/admin"):
            assert response.headers["Cache-Control"] == "no-store", route
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("route", [*PAGES, "/admin/login"])
def test_pages_have_nothing_inline_and_refresh_from_a_local_script(admin, world, route):
    client, _ = admin
    if route == "/admin/login":
        client = client.application.test_client()
    html = client.get(route).get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), route  # no inline script
    assert not re.search(r"\sstyle=", html) and "<style" not in html, route
    assert not re.search(r"\son[a-z]+\s*=", html), route  # no inline event handler
    assert not re.search(r'(src|href)="(https?:)?//', html.replace('href="http://127.0.0.1', "")), (
        route
    )
    assert '<script src="/admin/static/refresh.js" defer></script>' in html
    refreshing = route in {
        "/admin/",
        "/admin/?range=24h",
        "/admin/decisions",
        "/admin/positions",
        "/admin/orders",
        "/admin/fills",
        "/admin/signals",
        "/admin/alerts",
        "/admin/tasks",
        "/admin/controls",
    }
    assert ("data-refresh=" in html) == refreshing, route
    if refreshing:
        assert 'id="refresh-toggle"' in html and '<div id="content">' in html


# Hostile query values --------------------------------------------------------------------------

HOSTILE = [
    ("GET", "/admin/?page=99999999999999999999"),
    ("GET", "/admin/?range=zzz"),
    ("GET", "/admin/?account=99999999999999999999"),
    ("GET", "/admin/?account=42"),
    ("GET", "/admin/?account=-1"),
    ("GET", "/admin/?account=%00"),
    ("GET", "/admin/decisions?page=99999999999999999999"),
    ("GET", "/admin/decisions?page=-3"),
    ("GET", "/admin/decisions?run=1e9"),
    ("GET", "/admin/decisions?symbol=%27%3B--"),
    ("GET", "/admin/decisions?outcome=%00"),
    ("GET", "/admin/positions?account=0"),
    ("GET", "/admin/orders?page=99999999999999999999"),
    ("GET", "/admin/orders?page=-3"),
    ("GET", "/admin/orders?page=1.5"),
    ("GET", "/admin/orders?account=abc"),
    ("GET", "/admin/orders/99999999999999999999999"),
    ("GET", "/admin/orders/2147483648"),
    ("GET", "/admin/orders/0"),
    ("GET", "/admin/orders/-1"),
    ("GET", "/admin/orders/abc"),
    ("GET", "/admin/fills?page=99999999999999999999"),
    ("GET", "/admin/fills?account=99999999999999999999"),
    ("GET", "/admin/signals?page=-3"),
    ("GET", "/admin/signals?page=99999999999999999999"),
    ("GET", "/admin/alerts?page=99999999999999999999"),
    ("GET", "/admin/alerts?open=maybe"),
    ("GET", "/admin/tasks?page=-3"),
    ("GET", "/admin/tasks?state=%00"),
    ("GET", "/admin/tasks?since=99999-01-01"),
    ("GET", "/admin/tasks?until=2026-13-45"),
    ("GET", "/admin/tasks/%00"),
    ("GET", "/admin/tasks/" + "x" * 65),
    ("GET", "/admin/tasks/unknown-task"),
    ("GET", "/admin/controls?page=99999999999999999999"),
    ("GET", "/admin/controls?page=-3"),
    ("GET", "/admin/nowhere"),
    ("POST", "/admin/alerts/99999999999999999999/acknowledge"),
    ("POST", "/admin/alerts/2147483648/acknowledge"),
    ("POST", "/admin/alerts/424242/acknowledge"),
    ("POST", "/admin/tasks/%00/rerun"),
    ("POST", "/admin/tasks/unknown-task/rerun"),
    ("POST", "/admin/controls/explode"),
]


@pytest.mark.parametrize(("method", "url"), HOSTILE)
def test_hostile_values_are_400_or_404_never_500(admin, world, method, url):
    client, token = admin
    response = client.get(url) if method == "GET" else client.post(url, data={"csrf_token": token})
    assert response.status_code in (400, 404, 405), (url, response.status_code)
    if response.status_code == 400:
        assert "=" in response.get_data(as_text=True)  # names the parameter
