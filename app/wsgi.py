"""WSGI entry point for gunicorn: `gunicorn 'app.wsgi:app'`."""

import logging
import sys

from app import create_app
from app.bootstrap import settings_or_exit
from app.config import SettingsError
from app.config_checks import require_web_secrets

_settings = settings_or_exit("web")
try:
    require_web_secrets(_settings)
except SettingsError as exc:
    logging.getLogger("app.config").critical(str(exc))
    sys.exit(1)
app = create_app(_settings)
