"""Every effective setting: its value (secrets masked), where it came from, its default, what
it may be and what it is for, and what the settings resolve to."""

from __future__ import annotations

from flask import current_app, render_template

from app.format import as_decimal, percent_text
from app.services.settings_report import derived, settings_report
from app.web.admin import bp


def as_percent(name: str, value: str) -> str:
    """ "10.00 %" for a *_PCT setting's fraction, "" otherwise."""
    number = as_decimal(value) if name.endswith("_PCT") else None
    return "" if number is None else percent_text(number)


@bp.get("/settings")
def settings() -> str:
    config = current_app.extensions["settings"]
    rows = [(row, as_percent(row.name, row.value)) for row in settings_report(config)]
    return render_template("admin/settings.html", rows=rows, resolved=derived(config))
