"""WSGI entry point for gunicorn: `gunicorn 'app.wsgi:app'`."""

from app import create_app
from app.bootstrap import settings_or_exit

app = create_app(settings_or_exit("web"))
