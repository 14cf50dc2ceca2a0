"""What the admin pages accept in their URLs: every out-of-range or unknown value is a 400 or
404 with a message that names the parameter, never a database error."""

from __future__ import annotations

import re

from flask import abort, request
from werkzeug.routing import BaseConverter, ValidationError

MAX_ID = 2**31 - 1  # the ids are INTEGER columns
MAX_PAGE = 100_000  # 5 million rows back at 50 a page: further is a typo
TASK_ID = re.compile(r"[\w.:@-]{1,64}")  # a Celery task id (a UUID) or a test's name for one
SYMBOL = re.compile(r"[A-Z0-9]{1,32}")


class IdConverter(BaseConverter):
    """`<id:order_id>`: a positive database id; anything else (0, 99999999999999999999) does
    not match, so the URL is a 404 before the database is asked."""

    regex = r"\d{1,10}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 0 < number <= MAX_ID:
            raise ValidationError()
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


class TaskIdConverter(BaseConverter):
    """`<task_id:task_id>`: what a Celery task id can look like (no NUL, at most 64 chars)."""

    regex = TASK_ID.pattern


def page_number() -> int:
    """?page=N (1 when absent); 400 for anything but 1..MAX_PAGE."""
    raw = request.args.get("page", "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        abort(400, f"page={raw!r} is not a page number: use 1 to {MAX_PAGE}")
    return int(raw)


def id_arg(name: str) -> int | None:
    """?name=N, a database id, or None when absent; 400 for anything else."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        abort(400, f"{name}={raw!r} is not an id: use a whole number from 1 to {MAX_ID}")
    return int(raw)


def choice_arg(name: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
    """?name=one of `allowed` (`default` when absent); 400 naming the choices otherwise."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if raw not in allowed:
        abort(400, f"{name}={raw!r} is not one of {', '.join(allowed)}")
    return raw


def symbol_arg(name: str = "symbol") -> str | None:
    raw = request.args.get(name, "").strip().upper()
    if not raw:
        return None
    if not SYMBOL.fullmatch(raw):
        abort(400, f"{name}={raw!r} is not a symbol: letters and digits, e.g. BTCUSDT")
    return raw
