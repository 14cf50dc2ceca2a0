"""The Celery app for `celery -A workers worker|beat`, bound to the Flask app."""

from __future__ import annotations

from app import create_app
from app.bootstrap import settings_or_exit

flask_app = create_app(settings_or_exit("worker"))
celery = app = flask_app.extensions["celery"]

import workers.bench  # noqa: E402,F401  (cdb bench's no-op chain)
from workers import maintenance, market_data, pipeline  # noqa: E402,F401  (registers the tasks)
