"""The web surfaces: /health, /metrics and the admin panel."""

from __future__ import annotations

import logging

from flask import Flask
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import OperationalError

from app.web.admin import bp as admin_bp
from app.web.admin.params import IdConverter, TaskIdConverter
from app.web.auth import init_auth
from app.web.health import init_health
from app.web.limits import init_limits
from app.web.metrics import init_metrics
from app.web.security import init_security

log = logging.getLogger(__name__)


def database_down(error: OperationalError) -> ResponseReturnValue:
    """503, not 500, when the database does not answer: the admin panel (its sessions and
    login throttle included) cannot work without it."""
    log.warning("web: database unreachable: %s", type(error.orig).__name__)
    message = (
        "The database does not answer, and the admin panel needs it (sessions, logins, "
        "every page): start PostgreSQL or check DATABASE_URL; /health says more.\n"
    )
    return message, 503, {"Content-Type": "text/plain; charset=utf-8", "Retry-After": "10"}


def register_blueprints(app: Flask) -> None:
    init_security(app)
    init_limits(app)
    init_health(app)
    init_metrics(app)
    init_auth(app)
    app.url_map.converters.update(id=IdConverter, task_id=TaskIdConverter)
    app.register_blueprint(admin_bp)
    app.register_error_handler(OperationalError, database_down)
