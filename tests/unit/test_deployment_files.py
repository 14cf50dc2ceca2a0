"""docker-compose.yml and .env.template, checked by parsing (no Docker engine here)."""

import re
from pathlib import Path

import pytest
import yaml

from app.config import SECRET_FIELDS, Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "worker", "beat")


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_services_and_their_order(compose):
    services = compose["services"]
    assert set(services) >= {"redis", "postgres", *APP_SERVICES}
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "container_name" not in services["worker"]  # scalable with --scale


def test_worker_consumes_every_queue_and_beat_runs_the_workers_app(compose):
    import celeryconfig

    worker = compose["services"]["worker"]["command"]
    queues = worker[worker.index("-Q") + 1].split(",")
    assert sorted(queues) == sorted(celeryconfig.QUEUES)
    assert compose["services"]["beat"]["command"][:4] == ["celery", "-A", "workers", "beat"]


def test_every_service_is_hardened(compose):
    for name, service in compose["services"].items():
        assert service["read_only"] is True, name
        assert "/tmp" in service["tmpfs"], name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["logging"]["options"] == {"max-size": "10m", "max-file": "3"}, name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        assert service.get("user"), name
        if name != "migrate":
            assert service["healthcheck"]["start_period"], name
        if "container_name" in service:
            assert service["container_name"].startswith("cdb_"), name


def test_redis_keeps_its_password_and_an_append_only_file(compose):
    redis = compose["services"]["redis"]
    assert "--requirepass" in redis["command"] and "--appendonly yes" in redis["command"]
    assert "REDIS_PASSWORD" in compose["services"]["worker"]["environment"]


def test_env_template_lists_every_setting_with_placeholders_for_secrets():
    text = (ROOT / ".env.template").read_text()
    names = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    assert {name.upper() for name in Settings.model_fields} <= names
    for secret in (
        "REDIS_PASSWORD",
        "POSTGRES_PASSWORD",
        "ADMIN_PASSWORD",
        "GF_SECURITY_ADMIN_PASSWORD",
        "FLOWER_BASIC_AUTH",
    ):
        assert re.search(rf"^{secret}=<SET_IN_ENV>", text, flags=re.MULTILINE), secret
    assert all(name.upper() in names for name in SECRET_FIELDS)


def test_env_template_loads_once_secrets_are_filled_in(tmp_path, monkeypatch):
    from app.config import load_settings

    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    text = (ROOT / ".env.template").read_text()
    text = text.replace("FLOWER_BASIC_AUTH=<SET_IN_ENV>", "FLOWER_BASIC_AUTH=flower:x-secret-1")
    text = text.replace("<SET_IN_ENV>", "x-secret-1")
    env_file = tmp_path / ".env"
    env_file.write_text(text)
    settings = load_settings(env_file=env_file)
    assert settings.max_position_pct == Settings.model_fields["max_position_pct"].default
    assert settings.symbol_whitelist == [] and settings.database_url is None
    assert settings.redis_password.get_secret_value() == "x-secret-1"


def test_compose_uses_only_variables_the_template_documents(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", text))
    template = (ROOT / ".env.template").read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", template, flags=re.MULTILINE))
    assert used <= documented, used - documented
