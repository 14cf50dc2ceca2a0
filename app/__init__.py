"""Claire de Binaire: paper trading on MEXC as a Celery pipeline."""

from __future__ import annotations

from flask import Flask

from app.config import Settings, load_settings
from app.extensions import db
from app.tasking import celery_init_app


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app (and its Celery app); nothing connects until first use."""
    settings = settings or load_settings()
    app = Flask(__name__)
    app.extensions["settings"] = settings
    db.init_app(app, settings.sqlalchemy_url)
    celery_init_app(app, settings)
    return app
