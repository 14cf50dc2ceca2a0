"""The admin panel: server-rendered pages under /admin, every one behind the login."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask import Blueprint, render_template
from markupsafe import Markup, escape
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.format import Precision, as_decimal, at_precision, iso, money_text, percent_text, plain
from app.services.market_view import precisions
from app.web.admin.params import id_arg, page_number
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


@bp.before_request
def check_common_args() -> None:
    """?page= and ?account= mean the same on every page: a bad one is a 400 everywhere,
    even where the page has a single page or no account."""
    page_number()
    id_arg("account")


def read_session() -> Session:
    """The request's session (removed at teardown), bound to the engine."""
    db.engine  # noqa: B018 - binds the session factory on first use
    return db.session()


class Precisions(dict[str, Precision]):
    """Each symbol's decimals; an unknown symbol gets the default Precision()."""

    def __missing__(self, symbol: str) -> Precision:
        return Precision()


def precisions_of(session: Session, symbols: Iterable[str | None]) -> Precisions:
    return Precisions(precisions(session, [s for s in symbols if s]))


@bp.errorhandler(HTTPException)
def error_page(error: HTTPException) -> Any:
    """400, 403 and 404 in the panel's own page, with the reason the view gave."""
    if error.code is None or error.code < 400:
        return error
    page = render_template("admin/error.html", error=error)
    return page, error.code


# Numbers for people: the formatting filters ---------------------------------------------------


def _with_exact(text: str, exact: str, css: str = "") -> Markup:
    """`text`, with the exact stored value in a tooltip when it says more than `text`."""
    attributes = f' class="{css}"' if css else ""
    if exact and exact != text:
        attributes += f' title="{escape(exact)}"'
    return Markup(f"<span{attributes}>{escape(text)}</span>")


@bp.app_template_filter("iso")
def format_iso(value: datetime | str | None) -> str:
    """The one time format, as plain text (for attributes): 2026-11-30T01:52:02Z."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return iso(value)


@bp.app_template_filter("dt")
def format_time(value: datetime | str | None) -> Markup | str:
    """The one time format in a <time> element, which never wraps at its hyphens."""
    text = format_iso(value)
    return Markup(f'<time datetime="{escape(text)}">{escape(text)}</time>') if text else ""


@bp.app_template_filter("usdt")
def format_usdt(value: Any) -> Markup | str:
    """ "1,234.57 USDT", the exact amount in its title."""
    number = as_decimal(value)
    if number is None:
        return ""
    return _with_exact(money_text(number), f"{plain(number)} USDT", "usdt")


@bp.app_template_filter("pct")
def format_pct(value: Any) -> Markup | str:
    """A stored fraction as a percent: 0.0123 -> "1.23 %", the exact percent in its title."""
    number = as_decimal(value)
    if number is None:
        return ""
    return _with_exact(percent_text(number), f"{plain(number * 100)} %")


@bp.app_template_filter("price")
def format_price(value: Any, precision: Precision | None = None) -> Markup | str:
    """A price at the symbol's decimals."""
    number = as_decimal(value)
    if number is None:
        return ""
    return _with_exact(at_precision(number, (precision or Precision()).price), plain(number))


@bp.app_template_filter("qty")
def format_qty(value: Any, precision: Precision | None = None) -> Markup | str:
    """A quantity at the symbol's decimals."""
    number = as_decimal(value)
    if number is None:
        return ""
    return _with_exact(at_precision(number, (precision or Precision()).qty), plain(number))


@bp.app_template_filter("num")
def format_number(value: Any) -> str:
    """A plain number without exponent or trailing zeros: 0E-65 -> "0"."""
    number = as_decimal(value)
    return "" if number is None else plain(number)


@bp.app_template_filter("yesno")
def format_flag(value: Any) -> str:
    return "" if value is None else ("yes" if value else "no")


from app.web.admin import (  # noqa: E402  (registers the routes)
    controls,
    decisions,
    settings,
    tasks,
    views,
)

__all__ = ["bp", "controls", "decisions", "settings", "tasks", "views"]
