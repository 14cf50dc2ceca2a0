"""The web surfaces: /health, /metrics and the admin panel."""

from __future__ import annotations

from flask import Flask

from app.web import health
from app.web.admin import bp as admin_bp
from app.web.auth import init_auth
from app.web.metrics import init_metrics


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(health.bp)
    init_metrics(app)
    init_auth(app)
    app.register_blueprint(admin_bp)
