"""The admin panel: server-rendered pages under /admin, every one behind the login."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask import Blueprint
from sqlalchemy.orm import Session

from app.extensions import db
from app.web.auth import require_login

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="../templates",
    static_folder="../static",
    static_url_path="/static",
)
bp.before_request(require_login)


def read_session() -> Session:
    """The request's session (removed at teardown), bound to the engine."""
    db.engine  # noqa: B018 - binds the session factory on first use
    return db.session()


@bp.app_template_filter("dt")
def format_time(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


@bp.app_template_filter("money")
def format_money(value: Decimal | float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


@bp.app_template_filter("pct")
def format_pct(value: Decimal | float | None) -> str:
    """A fraction as a percentage: 0.0123 -> 1.23 %."""
    return "" if value is None else f"{float(value) * 100:.2f} %"


from app.web.admin import controls, tasks, views  # noqa: E402,F401  (registers the routes)
