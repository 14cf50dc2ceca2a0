"""Claire de Binaire: paper trading on MEXC as a Celery pipeline."""

from __future__ import annotations

import secrets

from flask import Flask

from app.config import Settings, load_settings
from app.extensions import db
from app.tasking import celery_init_app
from app.web import register_blueprints


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app (and its Celery app); nothing connects until first use."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.extensions["settings"] = settings
    key = settings.secret_key
    app.secret_key = key.get_secret_value() if key else secrets.token_hex(32)
    db.init_app(app, settings.sqlalchemy_url)
    celery_init_app(app, settings)
    register_blueprints(app)
    return app
