import json
import logging
import subprocess
import sys
from decimal import Decimal

import pytest

from app.config import Settings, SettingsError, load_settings
from app.config_checks import require_web_secrets
from app.logs import JsonFormatter

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def test_defaults_match_spec():
    s = load_settings(env_file=None)
    assert s.max_position_pct == Decimal("0.10")
    assert s.max_exposure_pct == Decimal("0.50")
    assert s.max_daily_drawdown_pct == Decimal("0.05")
    assert s.stop_loss_pct == Decimal("0.02")
    assert s.max_slippage_pct == Decimal("0.01")
    assert s.max_spread_multiplier == Decimal("5.0")
    assert s.data_stale_timeout_sec == 30
    assert s.initial_capital == Decimal("1000")
    assert s.mexc_base_url == "https://api.mexc.com"
    assert s.sqlalchemy_url.startswith("sqlite:///")


def test_out_of_range_warns_once_and_uses_default(monkeypatch, caplog):
    monkeypatch.setenv("MAX_POSITION_PCT", "0.9")
    with caplog.at_level(logging.WARNING, logger="app.config"):
        s = load_settings(env_file=None)
    assert s.max_position_pct == Decimal("0.10")
    warnings = [r for r in caplog.records if "MAX_POSITION_PCT" in r.getMessage()]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "0.9" in message and "0.10" in message and "0.01..0.25" in message


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("MAX_POSITION_PCT", "ten percent", "MAX_POSITION_PCT"),
        ("INTERVAL", "1h", "60m"),
        ("SYMBOL_WHITELIST", "BTC/USDT", "BTCUSDT"),
        ("MEXC_BASE_URL", "ftp://x", "MEXC_BASE_URL"),
        ("REDIS_URL", "http://x", "REDIS_URL"),
        ("INITIAL_CAPITAL", "-5", "INITIAL_CAPITAL"),
        ("TOP_N", "many", "TOP_N"),
    ],
)
def test_malformed_values_name_the_variable(monkeypatch, name, value, fragment):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert name in str(info.value)
    assert fragment in str(info.value)


def test_placeholder_secret_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv("MEXC_API_SECRET", "<SET_IN_ENV>")
    with pytest.raises(SettingsError) as info:
        load_settings(env_file=None)
    assert "MEXC_API_SECRET=***" in str(info.value)
    assert "placeholder" in str(info.value)


def test_live_mode_is_refused(monkeypatch):
    monkeypatch.setenv("ENABLE_LIVE_MODE", "true")
    with pytest.raises(SettingsError, match="paper-trading"):
        load_settings(env_file=None)


def test_production_requires_explicit_database_and_broker(monkeypatch):
    monkeypatch.setenv("CDB_ENV", "production")
    monkeypatch.setenv("REDIS_URL", "redis://cdb_redis:6379/0")
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings(env_file=None)
    monkeypatch.setenv("DATABASE_URL", "postgresql://cdb@cdb_postgres/cdb")
    settings = load_settings(env_file=None)  # a worker needs no SECRET_KEY ...
    assert settings.database_url
    with pytest.raises(SettingsError, match="SECRET_KEY must be set for the web app"):
        require_web_secrets(settings)  # ... the web app does
    monkeypatch.setenv("SECRET_KEY", "k" * 32)
    require_web_secrets(load_settings(env_file=None))


def test_production_refuses_weak_secrets(monkeypatch):
    monkeypatch.setenv("CDB_ENV", "production")
    monkeypatch.setenv("REDIS_URL", "redis://cdb_redis:6379/0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://cdb@cdb_postgres/cdb")
    monkeypatch.setenv("SECRET_KEY", "k" * 31)
    monkeypatch.setenv("ADMIN_PASSWORD", "short-pass1")  # 11 characters
    with pytest.raises(SettingsError) as refused:
        load_settings(env_file=None)
    message = str(refused.value)
    assert "ADMIN_PASSWORD has 11 characters" in message and "SECRET_KEY has 31" in message
    assert "short-pass1" not in message and "k" * 31 not in message
    monkeypatch.setenv("SECRET_KEY", "k" * 32)
    monkeypatch.setenv("ADMIN_PASSWORD", "pbkdf2:sha256:600000$salt$hash")  # a hash: any length
    settings = load_settings(env_file=None)
    assert settings.cookie_secure  # on by default in production
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "false")
    assert not load_settings(env_file=None).cookie_secure
    # development: no minimum
    monkeypatch.setenv("CDB_ENV", "development")
    monkeypatch.setenv("ADMIN_PASSWORD", "pw")
    monkeypatch.delenv("SESSION_COOKIE_SECURE")
    assert not load_settings(env_file=None).cookie_secure


def test_whitelist_is_a_comma_list(monkeypatch):
    monkeypatch.setenv("SYMBOL_WHITELIST", " btcusdt, ETHUSDT ,,")
    assert load_settings(env_file=None).symbol_whitelist == ["BTCUSDT", "ETHUSDT"]


def test_passwords_are_filled_into_urls_and_never_logged(monkeypatch):
    monkeypatch.setenv("REDIS_PASSWORD", "s3cr3t-redis")
    monkeypatch.setenv("POSTGRES_PASSWORD", "pg pass")
    monkeypatch.setenv("DATABASE_URL", "postgresql://cdb@db:5432/cdb")
    s = load_settings(env_file=None)
    assert s.broker_url == "redis://:s3cr3t-redis@127.0.0.1:6379/0"
    assert s.sqlalchemy_url == "postgresql+psycopg://cdb:pg%20pass@db:5432/cdb"
    formatter = JsonFormatter("test", s.secret_values())
    record = logging.LogRecord("x", logging.INFO, "f", 1, "url %s", (s.broker_url,), None)
    line = formatter.format(record)
    assert "s3cr3t-redis" not in line and "***" in line
    assert json.loads(line)["level"] == "INFO"


def test_worker_exits_1_on_bad_settings_with_json_log(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TOP_N": "lots", "STATE_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", "import workers"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    entry = json.loads(proc.stderr.strip().splitlines()[-1])
    assert entry["level"] == "CRITICAL" and "TOP_N" in entry["message"]


def test_top_n_is_fitted_to_the_weight_budget(monkeypatch, caplog):
    # one run every 5 s = 2 runs per 10 s; each costs 40 + 2 x TOP_N weight
    monkeypatch.setenv("MARKET_DATA_INTERVAL_SEC", "5")
    monkeypatch.setenv("MEXC_WEIGHT_BUDGET", "250")
    monkeypatch.setenv("TOP_N", "100")
    settings = load_settings(env_file=None)
    assert settings.top_n == 42  # (250 / 2 - 40) // 2
    assert "TOP_N=100 needs 240 weight a run" in caplog.text
    assert settings.replaced_values["top_n"] == ("TOP_N=42", "100, over MEXC_WEIGHT_BUDGET")
    monkeypatch.setenv("TOP_N", "42")
    assert load_settings(env_file=None).top_n == 42  # fits: kept
    monkeypatch.setenv("MARKET_DATA_INTERVAL_SEC", "15")
    monkeypatch.setenv("TOP_N", "100")
    assert load_settings(env_file=None).top_n == 100  # 240 x 2/3 = 160 <= 250
