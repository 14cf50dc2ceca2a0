"""Paper reset from the controls page (typed confirmation, CSRF, the old account still
viewable with ?account=) and the one audit trail of panel and CLI actions."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import OperatorAction, Portfolio
from app.services import operator
from app.services.operator import Actor
from tests.integration.test_web_admin import build_app, login, token_in
from tests.integration.test_web_decisions import decision_world
from tests.integration.test_web_metrics import wipe

pytestmark = pytest.mark.integration


@pytest.fixture
def app(stack_env, engine):
    wipe(engine)
    app = build_app(stack_env, initial_capital="2500")
    yield app
    app.extensions["celery"].close()


@pytest.fixture
def admin(app):
    client = app.test_client()
    assert login(client).status_code == 302
    return client, token_in(client.get("/admin/controls").get_data(as_text=True))


def accounts() -> list[Portfolio]:
    db.session.remove()
    with db.transaction() as session:
        return list(session.scalars(select(Portfolio).order_by(Portfolio.id)))


def audit() -> list[OperatorAction]:
    db.session.remove()
    with db.transaction() as session:
        return list(session.scalars(select(OperatorAction).order_by(OperatorAction.id)))


@pytest.mark.parametrize("typed", [None, "", "reset", "RESET please", "yes"])
def test_reset_needs_the_typed_confirmation(admin, typed):
    client, token = admin
    decision_world(datetime.now(UTC))
    data = {"csrf_token": token, "reason": "start afresh"}
    if typed is not None:
        data["confirm"] = typed
    response = client.post("/admin/controls/paper-reset", data=data)
    assert response.status_code == 400
    assert "Nothing was reset: type RESET" in response.get_data(as_text=True)
    assert [(a.name, a.active) for a in accounts()] == [("paper-1", True)]
    assert audit() == []


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_reset_needs_the_csrf_token(admin, token):
    client, _ = admin
    decision_world(datetime.now(UTC))
    data = {"confirm": "RESET"} | ({} if token is None else {"csrf_token": token})
    assert client.post("/admin/controls/paper-reset", data=data).status_code == 400
    assert len(accounts()) == 1 and audit() == []


def test_reset_opens_a_new_account_and_keeps_the_old_one_viewable(admin):
    client, token = admin
    world = decision_world(datetime.now(UTC))
    page = client.get("/admin/controls").get_data(as_text=True)
    assert 'action="/admin/controls/paper-reset"' in page and 'name="confirm"' in page

    response = client.post(
        "/admin/controls/paper-reset",
        data={"csrf_token": token, "confirm": " RESET ", "reason": "new strategy settings"},
    )
    assert response.status_code == 302
    old, new = accounts()
    assert (old.active, old.closed_at is not None) == (False, True)
    assert (new.active, new.name, new.cash) == (True, "paper-2", 2500)

    controls = client.get("/admin/controls").get_data(as_text=True)
    assert "closed paper-1" in controls and "opened paper-2 with 2,500.00 USDT" in controls
    assert "new strategy settings" in controls and "paper-reset" in controls
    for account in (old, new):
        assert f'href="/admin/orders?account={account.id}"' in controls

    # the active account is the default: no orders yet
    assert "No orders." in client.get("/admin/orders").get_data(as_text=True)
    assert "No fills." in client.get("/admin/fills").get_data(as_text=True)
    # the old one's history, as it was
    orders = client.get(f"/admin/orders?account={old.id}").get_data(as_text=True)
    assert f'href="/admin/orders/{world["order_id"]}"' in orders
    assert "was closed at" in orders and "paper-1" in orders
    fills = client.get(f"/admin/fills?account={old.id}").get_data(as_text=True)
    assert "BTCUSDT" in fills and "100.00 USDT" in fills
    dashboard = client.get(f"/admin/?account={old.id}").get_data(as_text=True)
    assert "CLOSED" in dashboard and "paper-1" in dashboard
    assert "2,500.00 USDT" in client.get("/admin/").get_data(as_text=True)
    assert client.get(f"/admin/orders/{world['order_id']}").status_code == 200

    for route in ("/admin/", "/admin/orders", "/admin/fills", "/admin/positions"):
        assert client.get(f"{route}?account=999").status_code == 404, route
        assert client.get(f"{route}?account=x").status_code == 400, route

    [action] = audit()
    assert (action.action, action.username, action.source) == ("paper-reset", "admin", "panel")
    assert action.outcome == {"closed": old.id, "opened": new.id}


def test_reset_refuses_an_over_long_reason(admin):
    client, token = admin
    data = {"csrf_token": token, "confirm": "RESET", "reason": "x" * 501}
    response = client.post("/admin/controls/paper-reset", data=data)
    assert response.status_code == 400
    assert "at most 500" in response.get_data(as_text=True)
    assert accounts() == []


def test_the_audit_trail_shows_cli_and_panel_actions(admin, app):
    client, token = admin
    settings = app.extensions["settings"]
    operator.control(db, settings, Actor("someone", "cli"), "halt", "maintenance from the shell")
    client.post("/admin/controls/resume", data={"csrf_token": token})
    html = client.get("/admin/controls").get_data(as_text=True)
    trail = html[html.index('id="audit"') :]
    cells = [
        re.sub(r"<[^>]+>", "", row).split("|")
        for row in re.findall(
            r"<tr><td>(.*?)</td></tr>",
            trail.replace("</td><td>", "|").replace("</td>\n      <td>", "|"),
            re.S,
        )
    ]
    people = [(c[1].strip(), c[2].strip(), c[3].strip(), c[4].strip()) for c in cells]
    assert people == [
        ("admin", "panel", "resume", ""),
        ("someone", "CLI", "halt", "maintenance from the shell"),
    ]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", cells[0][0].strip())
