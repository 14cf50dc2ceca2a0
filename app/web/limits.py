"""How much the web app accepts: a request body of MAX_CONTENT_LENGTH at most (413 beyond),
every form field and query value within its own length, and no control characters (a NUL
would reach PostgreSQL, a line break a Location header). Anything else is a 400 that names
the field and says what is allowed, before a view or a service sees it."""

from __future__ import annotations

import re

from flask import Flask, abort, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

MAX_CONTENT_LENGTH = 64 * 1024
FORM_FIELDS = {
    "csrf_token": 128,
    "username": 64,  # the login_attempts column
    "password": 1024,
    "next": 2048,
    "reason": 500,  # app.services.operator.REASON_MAX: halt and paper-reset reasons
    "confirm": 32,  # the typed RESET
}
OTHER_FIELD = 1000
QUERY_VALUE = 200  # the longest legitimate one is a time filter or a task name
QUERY_NAME = 64
MULTILINE = {"reason"}  # may hold tabs and line breaks
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def shown(value: str, limit: int = 40) -> str:
    """A value as a message may quote it: repr, cut to `limit` characters."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def field_problem(name: str, value: str, limit: int, multiline: bool = False) -> str | None:
    if len(value) > limit:
        return (
            f"{name}= is {len(value)} characters long; at most {limit} are accepted: "
            "shorten it and send it again"
        )
    if (CONTROL_BUT_LINES if multiline else CONTROL).search(value):
        return f"{name}={shown(value)} holds control characters: use printable text only"
    return None


def check_query() -> None:
    """400 for an over-long query parameter or one with control characters."""
    for name, value in request.args.items(multi=True):
        problem = (
            field_problem("parameter name", name, QUERY_NAME)
            if len(name) > QUERY_NAME or CONTROL.search(name)
            else field_problem(name, value, QUERY_VALUE)
        )
        if problem:
            abort(400, problem)


def form() -> MultiDict[str, str]:
    """request.form, or a 413 that says what the limit is."""
    try:
        return request.form
    except RequestEntityTooLarge:
        abort(
            413,
            f"the form sent is larger than {MAX_CONTENT_LENGTH // 1024} KB, which is more "
            f"than any form here needs (a reason is at most {FORM_FIELDS['reason']} "
            "characters): shorten what you typed and send it again",
        )


def check_form() -> None:
    """400 for a form field over its length or with control characters."""
    for name, value in form().items(multi=True):
        if len(name) > QUERY_NAME or CONTROL.search(name):
            abort(400, field_problem("field name", name, QUERY_NAME) or "bad field name")
        limit = FORM_FIELDS.get(name, OTHER_FIELD)
        problem = field_problem(name, value, limit, multiline=name in MULTILINE)
        if problem:
            abort(400, problem)


def check_request() -> None:
    check_query()
    if request.method == "POST":
        check_form()


def init_limits(app: Flask) -> None:
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
        MAX_FORM_MEMORY_SIZE=MAX_CONTENT_LENGTH,
        MAX_FORM_PARTS=100,
    )
