"""The web surfaces: /health, /metrics and the admin panel."""

from __future__ import annotations

from flask import Flask

from app.web import health
from app.web.admin import bp as admin_bp
from app.web.admin.params import IdConverter, TaskIdConverter
from app.web.auth import init_auth
from app.web.metrics import init_metrics
from app.web.security import init_security


def register_blueprints(app: Flask) -> None:
    init_security(app)
    app.register_blueprint(health.bp)
    init_metrics(app)
    init_auth(app)
    app.url_map.converters.update(id=IdConverter, task_id=TaskIdConverter)
    app.register_blueprint(admin_bp)
