"""Settings checks that look at several values together: the MEXC weight a run needs
against the budget, and the strength of the secrets outside development."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger("app.config")  # one logger for every settings warning


class SettingsError(Exception):
    """The environment cannot be used: the message names the variable and what to do."""


# MEXC request weight of one market-data run: all 24h tickers (40), then klines and a book
# for each of the TOP_N selected symbols (1 each). Held symbols add theirs on top.
ALL_TICKERS_WEIGHT = 40
WEIGHT_PER_SYMBOL = 2
WEIGHT_WINDOW_SEC = 10


def run_weight(top_n: int) -> int:
    return ALL_TICKERS_WEIGHT + WEIGHT_PER_SYMBOL * top_n


def fit_weight_budget(settings: Settings) -> Settings:
    """Runs every MARKET_DATA_INTERVAL_SEC must fit MEXC_WEIGHT_BUDGET per 10 s, or they
    would queue behind the budget and overlap: TOP_N is lowered to what fits (WARNING)."""
    runs = WEIGHT_WINDOW_SEC / settings.market_data_interval_sec
    if run_weight(settings.top_n) * runs <= settings.mexc_weight_budget:
        return settings
    fits = int((settings.mexc_weight_budget / runs - ALL_TICKERS_WEIGHT) // WEIGHT_PER_SYMBOL)
    if fits < 1:
        log.warning(
            "MEXC_WEIGHT_BUDGET=%s per 10 s cannot carry a run every %s s (each costs at least "
            "%s): runs will wait for the budget; raise MARKET_DATA_INTERVAL_SEC or the budget",
            settings.mexc_weight_budget,
            settings.market_data_interval_sec,
            run_weight(1),
            extra={"variable": "TOP_N"},
        )
        return settings
    log.warning(
        "TOP_N=%s needs %s weight a run (%s per 10 s at one run every %s s), more than "
        "MEXC_WEIGHT_BUDGET=%s per 10 s; using TOP_N=%s",
        settings.top_n,
        run_weight(settings.top_n),
        round(run_weight(settings.top_n) * runs),
        settings.market_data_interval_sec,
        settings.mexc_weight_budget,
        fits,
        extra={"variable": "TOP_N", "value": str(settings.top_n), "default": str(fits)},
    )
    why = f"{settings.top_n}, over MEXC_WEIGHT_BUDGET"
    replaced = {**settings._replaced, "top_n": (f"TOP_N={fits}", why)}
    settings = settings.model_copy(update={"top_n": fits})
    settings._replaced = replaced
    return settings


MIN_ADMIN_PASSWORD = 12
MIN_SECRET_KEY = 32


def check_secret_strength(settings: Settings) -> None:
    """Outside development: a login password and a session key that can't be guessed."""
    problems = []
    password = settings.admin_password.get_secret_value() if settings.admin_password else None
    is_hash = password is not None and password.startswith(("pbkdf2:", "scrypt:"))
    if password is not None and not is_hash and len(password) < MIN_ADMIN_PASSWORD:
        problems.append(
            f"ADMIN_PASSWORD has {len(password)} characters; at least {MIN_ADMIN_PASSWORD} are "
            "needed (or give a werkzeug hash)"
        )
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    if key is not None and len(key) < MIN_SECRET_KEY:
        problems.append(
            f"SECRET_KEY has {len(key)} characters; at least {MIN_SECRET_KEY} are needed, e.g. "
            "from `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
    if problems:
        raise SettingsError("weak secrets with CDB_ENV=production: " + "; ".join(problems))


def require_web_secrets(settings: Settings) -> None:
    """What the web app needs in production: its own SECRET_KEY, the same in every web
    process (a key made up per process would not recognise the sessions of the others).
    Other processes never need it, so compose gives it to the web service only."""
    if settings.cdb_env == "production" and settings.secret_key is None:
        raise SettingsError(
            "SECRET_KEY must be set for the web app when CDB_ENV=production (at least "
            f"{MIN_SECRET_KEY} characters); see .env.template"
        )
