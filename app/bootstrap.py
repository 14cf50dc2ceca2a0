"""Process start-up: JSON logs first, then settings, exit 1 on unusable settings."""

from __future__ import annotations

import logging
import os
import sys

from app.config import Settings, SettingsError, load_settings
from app.logs import configure_logging


def settings_or_exit(service: str) -> Settings:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    configure_logging(service, level if level in logging.getLevelNamesMapping() else "INFO")
    try:
        settings = load_settings()
    except SettingsError as exc:
        logging.getLogger("app.config").critical(str(exc))
        sys.exit(1)
    configure_logging(service, settings.log_level, settings.secret_values())
    settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return settings
