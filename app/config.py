"""One settings object for every process, read from the environment (and `.env`).

Rules (SPEC §5): a value out of its range logs one WARNING and falls back to the
default; a malformed value or a missing required one stops the process with exit
code 1 and a message naming the variable; `ENABLE_LIVE_MODE=true` is refused.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.config_checks import SettingsError, check_secret_strength, fit_weight_budget
from app.domain.market import KLINE_INTERVALS
from app.paths import default_env_file, default_state_dir, resolve_state_dir

log = logging.getLogger(__name__)

SECRET_PLACEHOLDER = "<SET_IN_ENV>"
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{2,30}$")

# (min, max) per variable; None means open-ended. Out of range -> WARNING + default.
RANGES: dict[str, tuple[Any, Any]] = {
    "max_position_pct": (Decimal("0.01"), Decimal("0.25")),
    "max_exposure_pct": (Decimal("0.10"), Decimal("1.00")),
    "max_daily_drawdown_pct": (Decimal("0.01"), Decimal("0.20")),
    "stop_loss_pct": (Decimal("0.005"), Decimal("0.10")),
    "max_slippage_pct": (Decimal("0.001"), Decimal("0.05")),
    "max_spread_multiplier": (Decimal("2.0"), Decimal("10.0")),
    "data_stale_timeout_sec": (10, 120),
    "market_data_interval_sec": (5, 3600),
    "top_n": (1, 100),
    "lookback_minutes": (1, 1440),
    "min_quote_volume": (Decimal("0"), None),
    "mexc_timeout_sec": (1.0, 60.0),
    "mexc_max_retries": (0, 10),
    "mexc_weight_budget": (10, 500),
    "market_data_fetch_concurrency": (1, 32),
    "reconcile_interval_sec": (5, 300),
    "retention_snapshot_days": (1, 365),
    "retention_task_runs_days": (1, 365),
    "retention_evaluations_days": (1, 3650),
    "retention_universe_hours": (1, 720),
    "retention_book_hours": (1, 8760),
    "prune_interval_sec": (60, 86400),
    "stream_max_subscriptions": (1, 30),
    "stream_ping_interval_sec": (5.0, 50.0),
    "stream_stall_timeout_sec": (3.0, 55.0),
    "stream_rotate_after_sec": (60.0, 86000.0),
    "stream_backoff_base_sec": (0.05, 10.0),
    "stream_backoff_max_sec": (1.0, 300.0),
    "stream_max_age_sec": (2.0, 120.0),
    "stream_symbol_ttl_sec": (10, 3600),
    "stream_deals_kept": (1, 1000),
    "stream_klines_kept": (1, 1440),
    "stream_history_kept": (10, 3600),
    "stream_flush_interval_ms": (50, 2000),
    "stream_watch_poll_sec": (0.2, 30.0),
    "stream_move_trigger_pct": (Decimal("0.001"), Decimal("0.10")),
    "stream_trigger_min_gap_sec": (0.0, 300.0),
    "stream_trigger_bucket_sec": (5, 3600),
}

# Variables that must be set explicitly when CDB_ENV=production (no embedded fallback).
REQUIRED_IN_PRODUCTION = ("database_url", "redis_url")

SECRET_FIELDS = (
    "redis_password",
    "postgres_password",
    "mexc_api_key",
    "mexc_api_secret",
    "admin_password",
    "flower_basic_auth",
    "gf_security_admin_password",
    "secret_key",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None, env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    cdb_env: Literal["development", "production"] = "development"
    enable_live_mode: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    state_dir: Path = Field(default_factory=default_state_dir)

    # Risk (SPEC §4/§5); percentages are decimals (0.10 = 10 %).
    max_position_pct: Decimal = Decimal("0.10")
    max_exposure_pct: Decimal = Decimal("0.50")
    max_daily_drawdown_pct: Decimal = Decimal("0.05")
    stop_loss_pct: Decimal = Decimal("0.02")
    max_slippage_pct: Decimal = Decimal("0.01")
    max_spread_multiplier: Decimal = Decimal("5.0")
    data_stale_timeout_sec: int = 30
    initial_capital: Decimal = Field(default=Decimal("1000"), gt=0)

    # Market data
    mexc_base_url: str = "https://api.mexc.com"
    mexc_timeout_sec: float = 10.0
    mexc_max_retries: int = 4
    mexc_weight_budget: int = 250
    market_data_interval_sec: int = 15
    market_data_fetch_concurrency: int = 4
    symbol_whitelist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    top_n: int = 10
    interval: str = "1m"
    lookback_minutes: int = 15
    min_quote_volume: Decimal = Decimal("100000")
    strategy: str = "momentum"
    reconcile_interval_sec: int = 10  # how often beat runs the reconciler

    # Retention (the beat task cdb.maintenance.prune). Orders, fills, signals and risk
    # decisions — the account's books — are never pruned.
    retention_snapshot_days: int = 7  # ticker snapshots, klines, quiet runs; equity hourly
    retention_book_hours: int = 24  # order books (50 levels a side: the biggest rows per run)
    retention_task_runs_days: int = 7
    retention_evaluations_days: int = 30  # verdicts without a signal
    retention_universe_hours: int = 24  # the all-tickers history and its not_fetched verdicts
    prune_interval_sec: int = 600

    # Live market data: `cdb stream` (MEXC's WebSocket streams; REST stays the floor).
    mexc_ws_url: str = "wss://wbs-api.mexc.com/ws"
    stream_max_subscriptions: int = 30
    stream_ping_interval_sec: float = 20.0
    stream_stall_timeout_sec: float = 20.0
    stream_rotate_after_sec: float = 82800.0
    stream_backoff_base_sec: float = 0.5
    stream_backoff_max_sec: float = 30.0
    stream_max_age_sec: float = 10.0
    stream_symbol_ttl_sec: int = 120
    stream_deals_kept: int = 100
    stream_klines_kept: int = 60
    stream_history_kept: int = 300
    stream_flush_interval_ms: int = 250
    stream_watch_poll_sec: float = 1.0
    stream_triggers: str = "move,candle,stop"
    stream_move_trigger_pct: Decimal = Decimal("0.005")
    stream_trigger_min_gap_sec: float = 5.0
    stream_trigger_bucket_sec: int = 60

    # Infrastructure
    database_url: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = ""

    # Operator surfaces
    web_port: int = Field(default=8000, ge=1, le=65535)
    flower_port: int = Field(default=5555, ge=1, le=65535)
    flower_url: str | None = None  # where the admin panel links to Flower
    admin_username: str = "admin"
    # The admin session cookie is sent over HTTPS only; default: on when CDB_ENV=production.
    session_cookie_secure: bool | None = None
    # How many reverse proxies in front of the web app to trust for X-Forwarded-For/-Proto
    # (0: none, the client's own address counts).
    trusted_proxies: int = Field(default=0, ge=0, le=5)

    # Secrets: never logged, never shown.
    redis_password: SecretStr | None = None
    postgres_password: SecretStr | None = None
    mexc_api_key: SecretStr | None = None
    mexc_api_secret: SecretStr | None = None
    admin_password: SecretStr | None = None
    flower_basic_auth: SecretStr | None = None
    gf_security_admin_password: SecretStr | None = None
    secret_key: SecretStr | None = None  # Flask session signing; generated per process if unset

    # What load_settings found: the .env it read (None: none) and the out-of-range values it
    # replaced by their defaults ({name: the value given}); shown by `cdb settings`.
    _env_file: Path | None = PrivateAttr(default=None)
    _replaced: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("state_dir", mode="before")
    @classmethod
    def _absolute_state_dir(cls, value: Any) -> Path:
        return resolve_state_dir(value)

    @field_validator("session_cookie_secure", mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("symbol_whitelist", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> list[str]:
        if value is None:
            return []
        items = value.split(",") if isinstance(value, str) else list(value)
        symbols = [str(item).strip().upper() for item in items if str(item).strip()]
        for symbol in symbols:
            if not SYMBOL_PATTERN.fullmatch(symbol):
                raise ValueError(
                    f"{symbol!r} is not a MEXC spot symbol; write pairs without separators, "
                    "e.g. BTCUSDT,ETHUSDT"
                )
        return symbols

    @field_validator("interval")
    @classmethod
    def _known_interval(cls, value: str) -> str:
        if value not in KLINE_INTERVALS:
            hint = " (MEXC writes one hour as 60m)" if value == "1h" else ""
            raise ValueError(
                f"{value!r} is not a MEXC kline interval{hint}; use one of "
                + " ".join(KLINE_INTERVALS)
            )
        return value

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        from app.domain.strategies import known_strategies

        if value not in known_strategies():
            raise ValueError(f"unknown strategy; known: {', '.join(known_strategies())}")
        return value

    @field_validator("flower_basic_auth")
    @classmethod
    def _user_colon_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and ":" not in value.get_secret_value():
            raise ValueError("must be user:password")
        return value

    @field_validator("mexc_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL such as https://api.mexc.com")
        return value.strip().rstrip("/")

    @field_validator("mexc_ws_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise ValueError("must be a ws(s) URL such as wss://wbs-api.mexc.com/ws")
        return value.strip()

    @field_validator("stream_triggers")
    @classmethod
    def _trigger_kinds(cls, value: str) -> str:
        """A comma list of move, candle, stop; "none" (or empty) for no tick runs."""
        kinds = [k.strip() for k in value.split(",") if k.strip() and k.strip() != "none"]
        unknown = sorted(set(kinds) - {"move", "candle", "stop"})
        if unknown:
            raise ValueError(f"unknown trigger {', '.join(unknown)}; use any of move, candle, stop")
        return ",".join(kinds)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("redis", "rediss"):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        scheme = urlsplit(value).scheme
        if not (scheme.startswith("postgres") or scheme.startswith("sqlite")):
            raise ValueError("must be a postgresql:// or sqlite:/// URL")
        return value.strip()

    @field_validator(*SECRET_FIELDS, mode="before")
    @classmethod
    def _real_secret(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        text = str(value)
        if text.strip() == SECRET_PLACEHOLDER or text.startswith("<"):
            raise ValueError(f"still holds the placeholder {SECRET_PLACEHOLDER}; set a real value")
        if text != text.strip() or any(ch in text for ch in "\r\n\t"):
            raise ValueError("contains whitespace or control characters")
        return value

    # Derived values -------------------------------------------------------

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver made explicit."""
        url = self.database_url or f"sqlite:///{self.sqlite_path}"
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix) :]
        if self.postgres_password and url.startswith("postgresql") and "@" in url:
            url = _with_password(url, self.postgres_password.get_secret_value())
        return url

    @property
    def cookie_secure(self) -> bool:
        if self.session_cookie_secure is not None:
            return self.session_cookie_secure
        return self.cdb_env == "production"

    @property
    def sqlite_path(self) -> Path:
        """Where the embedded database lives (used when DATABASE_URL is not set)."""
        return self.state_dir / "cdb.sqlite3"

    @property
    def env_file(self) -> Path | None:
        return self._env_file

    @property
    def replaced_values(self) -> dict[str, tuple[str, str]]:
        return dict(self._replaced)

    @property
    def broker_url(self) -> str:
        """REDIS_URL, with REDIS_PASSWORD filled in when the URL carries none."""
        if self.redis_password:
            return _with_password(self.redis_url, self.redis_password.get_secret_value())
        return self.redis_url

    def secret_values(self) -> list[str]:
        values = []
        for name in SECRET_FIELDS:
            secret = getattr(self, name)
            if secret is not None and secret.get_secret_value():
                values.append(secret.get_secret_value())
        for url in (self.redis_url, self.database_url or ""):
            password = urlsplit(url).password
            if password:
                values.append(password)
        return values


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = quote(parts.username or "", safe="")
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to log or show."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


_DEFAULT_ENV_FILE: Any = object()


def load_settings(env_file: str | Path | None = _DEFAULT_ENV_FILE, **overrides: Any) -> Settings:
    """Read and check the environment; raise SettingsError for anything unusable.

    `env_file` defaults to the project's `.env` (app.paths.default_env_file), wherever the
    process runs from; None reads the environment only."""
    if env_file is _DEFAULT_ENV_FILE:
        env_file = default_env_file()
    used = Path(env_file) if env_file is not None and Path(env_file).is_file() else None
    try:
        settings = Settings(_env_file=used, **overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None

    if settings.enable_live_mode:
        raise SettingsError(
            "ENABLE_LIVE_MODE=true is refused: Claire de Binaire is a paper-trading system and "
            "never places real orders. Set ENABLE_LIVE_MODE=false (or remove it)."
        )
    if settings.cdb_env == "production":
        missing = [name for name in REQUIRED_IN_PRODUCTION if name not in settings.model_fields_set]
        if missing:
            names = ", ".join(name.upper() for name in missing)
            raise SettingsError(
                f"{names} must be set when CDB_ENV=production (no embedded default is used "
                "there); see .env.template"
            )

    if settings.cdb_env == "production":
        check_secret_strength(settings)

    fixes = {}
    for name, (low, high) in RANGES.items():
        value = getattr(settings, name)
        if (low is not None and value < low) or (high is not None and value > high):
            default = Settings.model_fields[name].default
            bounds = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
            log.warning(
                "%s=%s is outside %s; using the default %s",
                name.upper(),
                value,
                bounds,
                default,
                extra={"variable": name.upper(), "value": str(value), "default": str(default)},
            )
            fixes[name] = default
    if fixes:
        given = {
            name: ("default", f"{getattr(settings, name)}, outside the range") for name in fixes
        }
        settings = settings.model_copy(update=fixes)
        settings._replaced = given
    settings._env_file = used
    settings = fit_weight_budget(settings)
    if settings.market_data_interval_sec >= settings.data_stale_timeout_sec:
        log.warning(
            "MARKET_DATA_INTERVAL_SEC=%s is not below DATA_STALE_TIMEOUT_SEC=%s: market data "
            "will look stale between runs",
            settings.market_data_interval_sec,
            settings.data_stale_timeout_sec,
        )
    return settings


def _describe(exc: ValidationError) -> str:
    """One line naming every bad variable, its value (secrets masked) and what is wrong."""
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        value = error.get("input")
        shown = "***" if name.lower() in SECRET_FIELDS else repr(value)
        reason = error["msg"].removeprefix("Value error, ")
        problems.append(f"{name}={shown}: {reason}")
    return (
        "invalid settings: "
        + "; ".join(problems)
        + " (fix the environment or .env; .env.template lists every variable and its range)"
    )
