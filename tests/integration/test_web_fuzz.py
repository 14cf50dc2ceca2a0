"""Hypothesis against the admin panel on PostgreSQL: random paths, query strings and form
fields (text, control characters, huge numbers, huge lengths) on every admin route and the
login form. Every answer is a 2xx, a redirect or a 4xx, never a 5xx, and nothing bad is
stored: no over-long or control-character text, no reset without the typed RESET, no
session without the password."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

import celeryconfig
from app.extensions import db
from app.models import TaskRun
from app.web import health, limits
from tests.integration.test_web_admin import build_app, login, token_in
from tests.integration.test_web_decisions import decision_world
from tests.integration.test_web_metrics import wipe
from tests.integration.test_web_security import admin_urls

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
QUERY_KEYS = [
    "page",
    "account",
    "range",
    "open",
    "name",
    "state",
    "since",
    "until",
    "symbol",
    "run",
    "outcome",
    "result",
    "next",
]
FORM_KEYS = ["reason", "confirm", "csrf_token", "username", "password", "next"]
CONTROL = "".join(chr(c) for c in [*range(32), 127])

printable = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
controls = st.text(st.sampled_from(CONTROL), min_size=1, max_size=5)
huge_numbers = st.integers(min_value=-(10**40), max_value=10**40).map(str)
lengths = st.sampled_from([33, 65, 201, 501, 1001, 5_000, 70_000]).flatmap(
    lambda n: st.sampled_from(["x", "9", "é", "\x00"]).map(lambda c: c * n)
)
tricky = st.sampled_from(
    ["", " ", "RESET", " RESET ", "reset", "-1", "0", "1e9", "1.5", "NaN", "%00", "../..",
     "' OR 1=1 --", "<script>x</script>", "\r\nSet-Cookie: a=b", "//evil.example/",
     "https://evil.example/", "/admin/\\evil", "2026-13-45", "99999-01-01", "BTCUSDT"]
)  # fmt: skip
values = st.one_of(printable, controls, huge_numbers, lengths, tricky)
keys = st.one_of(st.sampled_from(QUERY_KEYS), printable.filter(bool), controls)


@pytest.fixture(scope="module")
def panel(stack_env, engine):
    """A logged-in client on a world with an order, alerts, a task run and an account."""
    wipe(engine)
    app = build_app(stack_env)
    decision_world(datetime.now(UTC))
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
    client = app.test_client()
    assert login(client).status_code == 302
    token = token_in(client.get("/admin/controls").get_data(as_text=True))
    yield app, client, token
    app.extensions[health.MONITOR_KEY].stop()
    app.extensions["celery"].close()


def stored(engine) -> dict:
    with engine.connect() as conn:

        def one(sql: str):
            return conn.execute(text(sql)).scalar_one()

        return {
            "accounts": one("SELECT count(*) FROM portfolios"),
            "resets": one("SELECT count(*) FROM operator_actions WHERE action = 'paper-reset'"),
            "longest_reason": one("SELECT coalesce(max(length(reason)), 0) FROM operator_actions"),
            "reasons": conn.execute(text("SELECT reason FROM operator_actions")).scalars().all(),
            "sessions": one("SELECT count(*) FROM admin_sessions"),
            "attempt_names": conn.execute(text("SELECT username FROM login_attempts"))
            .scalars()
            .all(),
        }


def assert_nothing_bad_stored(engine, accounts_before: int) -> None:
    now = stored(engine)
    assert now["longest_reason"] <= limits.FORM_FIELDS["reason"]
    for reason in now["reasons"]:
        assert reason is None or not limits.CONTROL_BUT_LINES.search(reason), repr(reason)
    # An account is only ever opened by a reset, and a reset is always recorded.
    assert now["accounts"] - accounts_before <= now["resets"]
    assert now["sessions"] == 1  # the panel's own login, nothing else
    for name in now["attempt_names"]:
        assert len(name) <= 64 and not limits.CONTROL.search(name), repr(name)


def assert_answered(response, what) -> None:
    assert response.status_code < 500, (what, response.status_code)
    assert response.status_code in (200, 301, 302, 308, 400, 401, 403, 404, 405, 413, 429), what


@pytest.fixture(scope="module")
def accounts_at_start(panel, engine):
    return stored(engine)["accounts"]


@FUZZ
@given(data=st.data())
def test_admin_pages_with_any_query(panel, engine, accounts_at_start, data):
    app, client, _ = panel
    gets = sorted({url for _, method, url in admin_urls(app) if method == "GET"})
    path = data.draw(
        st.one_of(
            st.sampled_from(gets),
            st.builds(
                lambda base, tail: base + quote(tail, safe="/"),
                st.sampled_from(["/admin/orders/", "/admin/tasks/", "/admin/", "/admin/static/"]),
                st.one_of(huge_numbers, printable, tricky),
            ),
        ),
        label="path",
    )
    query = data.draw(st.lists(st.tuples(keys, values), max_size=4), label="query")
    response = client.get(path, query_string=query)
    assert_answered(response, (path, query))
    assert_nothing_bad_stored(engine, accounts_at_start)


@FUZZ
@given(data=st.data())
def test_admin_forms_with_any_fields(panel, engine, accounts_at_start, data):
    app, client, token = panel
    posts = sorted(
        {url for endpoint, method, url in admin_urls(app) if method == "POST"}
        - {"/admin/logout"}  # the other examples need the session
    )
    url = data.draw(
        st.one_of(
            st.sampled_from(posts),
            st.builds(
                lambda tail: f"/admin/alerts/{quote(tail, safe='')}/acknowledge",
                st.one_of(huge_numbers, tricky),
            ),
            st.builds(
                lambda tail: f"/admin/tasks/{quote(tail, safe='')}/rerun",
                st.one_of(printable, tricky),
            ),
        ),
        label="url",
    )
    fields = data.draw(
        st.dictionaries(st.one_of(st.sampled_from(FORM_KEYS), keys), values, max_size=4),
        label="fields",
    )
    if data.draw(st.booleans(), label="right token"):
        fields["csrf_token"] = token
    query = data.draw(st.lists(st.tuples(keys, values), max_size=2), label="query")
    method = data.draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT"]), label="method")
    response = client.open(url, method=method, data=fields, query_string=query)
    assert_answered(response, (method, url, fields))
    if response.status_code == 302 and "paper-reset" in url:
        assert fields.get("confirm", "").strip() == "RESET"
    assert_nothing_bad_stored(engine, accounts_at_start)


@FUZZ
@given(data=st.data())
def test_the_login_form_with_any_fields(panel, engine, accounts_at_start, data):
    app, _, _ = panel
    client = app.test_client()
    token = token_in(client.get("/admin/login").get_data(as_text=True))
    fields = data.draw(
        st.dictionaries(st.sampled_from(FORM_KEYS), values, max_size=5), label="fields"
    )
    if data.draw(st.booleans(), label="right token"):
        fields["csrf_token"] = token
    remote = data.draw(st.sampled_from(["10.9.0.1", "10.9.0.2", "2001:db8::1"]), label="remote")
    response = client.post("/admin/login", data=fields, environ_base={"REMOTE_ADDR": remote})
    assert_answered(response, fields)
    assert response.status_code != 302  # never the password
    location = response.headers.get("Location", "")
    assert not location or location.startswith("/admin")
    assert_nothing_bad_stored(engine, accounts_at_start)
