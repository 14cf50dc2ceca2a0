"""Deployment files, checked by parsing (no Docker engine here).

docker-compose.yml (+ the dev override), Dockerfile, .env.template, the Prometheus
configuration and alert rules, Grafana provisioning and dashboards. When `promtool` or a
Docker Compose v2 binary is on PATH, the files are also handed to them; otherwise those
tests are skipped.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.config import SECRET_FIELDS, Settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARDS = ("portfolio", "risk", "system")

# The metrics the web app exports (prefix cdb_); histograms also as _bucket/_sum/_count.
CDB_METRICS = {
    "cdb_equity",
    "cdb_daily_pnl",
    "cdb_exposure",
    "cdb_daily_drawdown_pct",
    "cdb_max_daily_drawdown_pct",
    "cdb_halted",
    "cdb_position_value",
    "cdb_risk_rejections_total",
    "cdb_orders_total",
    "cdb_stage_latency_seconds",
    "cdb_market_data_age_seconds",
}
STANDARD_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
STANDARD_PREFIXES = ("flower_", "flask_", "process_", "python_", "prometheus_", "grafana_", "go_")


def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose():
    return _yaml(ROOT / "docker-compose.yml")


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


@pytest.fixture(scope="module")
def override():
    return _yaml(ROOT / "docker-compose.override.yml")


@pytest.fixture(scope="module")
def prometheus():
    return _yaml(DEPLOY / "prometheus" / "prometheus.yml")


@pytest.fixture(scope="module")
def alerts():
    rules = _yaml(DEPLOY / "prometheus" / "alerts.yml")
    return {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}


@pytest.fixture(scope="module")
def dashboards():
    return {
        name: json.loads((DEPLOY / "grafana" / "dashboards" / f"{name}.json").read_text())
        for name in DASHBOARDS
    }


def _app_services(services):
    """The services built from this repository's image."""
    return {name: s for name, s in services.items() if s.get("image") == "claire-de-binaire:latest"}


def _workers(services):
    return {
        name: s
        for name, s in services.items()
        if s.get("command", [])[:4] == ["celery", "-A", "workers", "worker"]
    }


def _one_shot(service) -> bool:
    return service.get("restart") == "no"


def _flag(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


# --- the service graph ------------------------------------------------------------------


def test_compose_has_the_services_and_their_order(services):
    assert set(services) >= {
        "redis",
        "postgres",
        "migrate",
        "web",
        "beat",
        "flower",
        "prometheus",
        "grafana",
    }
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"] == ["cdb", "db", "upgrade"]
    for name in ("web", "beat", *_workers(services)):
        depends = services[name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["flower"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_every_dependency_waits_for_health_or_completion(services):
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            condition = spec["condition"]
            if condition == "service_completed_successfully":
                assert _one_shot(services[dependency]), (name, dependency)
            else:
                assert condition == "service_healthy", (name, dependency)
                assert services[dependency]["healthcheck"]["test"], (name, dependency)


def test_one_worker_service_per_queue_each_scalable(services):
    import celeryconfig

    workers = _workers(services)
    queues = sorted(_flag(w["command"], "-Q") for w in workers.values())
    assert queues == sorted(celeryconfig.QUEUES)  # every queue, each by one service
    for name, worker in workers.items():
        queue = _flag(worker["command"], "-Q")
        assert name == f"worker-{queue.replace('_', '-')}"
        assert "container_name" not in worker, name  # `--scale` needs generated names
        assert "replicas" not in worker.get("deploy", {}), name
        # The health check pings this container's own node, `<queue>@<hostname>`.
        assert _flag(worker["command"], "-n") == f"{queue}@%h"
        assert worker["environment"]["CDB_WORKER_NODE"] == queue
        test = " ".join(worker["healthcheck"]["test"])
        assert "inspect ping" in test and "$$CDB_WORKER_NODE@$$HOSTNAME" in test, name


def test_exactly_one_beat_running_the_workers_app(services):
    beats = [s for s in services.values() if s.get("command", [])[3:4] == ["beat"]]
    assert len(beats) == 1
    beat = services["beat"]
    assert beat["command"][:4] == ["celery", "-A", "workers", "beat"]
    assert beat["deploy"]["replicas"] == 1
    assert beat["container_name"] == "cdb_beat"  # a fixed name: cannot be scaled
    # The schedule lives on the tmpfs, where the health check looks for it.
    assert _flag(beat["command"], "--schedule").startswith("/tmp/")
    assert "celerybeat-schedule" in " ".join(beat["healthcheck"]["test"])


def _gunicorn(command: list[str]) -> list[str]:
    """The gunicorn argv of `sh -c 'mkdir -p ... && exec gunicorn ...'`."""
    assert command[:2] == ["sh", "-c"]
    argv = shlex.split(command[2])
    return argv[argv.index("gunicorn") :]


def test_web_runs_gunicorn_on_the_wsgi_app(services, override):
    web = services["web"]
    command = _gunicorn(web["command"])
    assert command[-1] == "app.wsgi:app"
    assert _flag(command, "-b") == "0.0.0.0:8000" and _flag(command, "-w") == "2"
    # Two processes must share the session secret: compose refuses to start without it.
    assert web["environment"]["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert web["environment"]["ADMIN_PASSWORD"].startswith("${ADMIN_PASSWORD:?")
    # ... and their HTTP metrics, merged from a folder on the tmpfs made before the start.
    folder = web["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert folder.startswith("/tmp/")
    assert web["command"][2].startswith('mkdir -p "$$PROMETHEUS_MULTIPROC_DIR" && exec gunicorn')
    development = _gunicorn(override["services"]["web"]["command"])
    assert "--reload" in development and development[-1] == "app.wsgi:app"


def test_flower_runs_read_only_behind_basic_auth_from_the_environment(services, override):
    flower = services["flower"]
    # app.flower: `celery -A workers flower` with the write API refused unless allowed.
    assert flower["command"][:3] == ["python", "-m", "app.flower"]
    assert "--port=5555" in flower["command"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert flower["environment"]["FLOWER_ALLOW_WRITE"] == "${FLOWER_ALLOW_WRITE:-false}"
    assert not any("basic" in arg or "read_only" in arg for arg in flower["command"])
    assert "command" not in override["services"]["flower"]  # development runs it the same way


def test_health_checks_use_what_the_images_have(services):
    def test_of(name):
        return " ".join(services[name]["healthcheck"]["test"])

    assert "/health/live" in test_of("web") and "urllib" in test_of("web")
    assert "/healthcheck" in test_of("flower") and "urllib" in test_of("flower")
    assert "wget" in test_of("prometheus") and "/-/healthy" in test_of("prometheus")
    assert "wget" in test_of("grafana") and "/api/health" in test_of("grafana")
    for name in _app_services(services):
        if not _one_shot(services[name]):
            assert "curl" not in test_of(name), name  # python:3.11-slim has no curl


# --- hardening ----------------------------------------------------------------------------


def test_every_service_is_hardened(services):
    for name, service in services.items():
        assert service["read_only"] is True, name
        assert "/tmp" in service["tmpfs"], name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["logging"]["driver"] == "json-file", name
        assert service["logging"]["options"] == {"max-size": "10m", "max-file": "3"}, name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        assert service["deploy"]["resources"]["limits"]["cpus"], name
        uid = re.sub(r"\$\{[A-Z_]+:-(\d+)\}", r"\1", service["user"]).split(":")[0]
        assert uid.isdigit() and int(uid) != 0, name  # a non-root user
        if _one_shot(service):
            assert "healthcheck" not in service, name
        else:
            assert service["restart"] == "unless-stopped", name
            assert service["healthcheck"]["start_period"], name
        if "container_name" in service:
            assert service["container_name"].startswith("cdb_"), name


def test_services_not_scaled_have_cdb_container_names(services):
    scalable = set(_workers(services)) | {"backup"}  # `compose run` names its own
    for name, service in services.items():
        if name not in scalable:
            assert service["container_name"] == f"cdb_{name}", name


def test_app_services_share_the_image_and_the_production_settings(services):
    app = _app_services(services)
    assert set(app) >= {"migrate", "web", "beat", "flower", *_workers(services)}
    for name, service in app.items():
        env = service["environment"]
        assert env["CDB_ENV"] == "production", name
        assert env["STATE_DIR"].startswith("/tmp/"), name  # the root file system is read-only
        userinfo = re.sub(r"\$\{[^}]*\}", "", env["DATABASE_URL"]).split("//")[1].split("@")[0]
        assert ":" not in userinfo, name  # no password in the URL: the app fills it in
        assert "volumes" not in service, name  # production: the code is baked in
        assert service["user"] == "10001:10001", name


# --- secrets: each service gets exactly the ones it uses ------------------------------------

SECRET_VARIABLES = {name.upper() for name in SECRET_FIELDS}
NEEDED_SECRETS = {
    "redis": {"REDIS_PASSWORD"},  # requirepass and its health check
    "postgres": {"POSTGRES_PASSWORD"},
    "migrate": {"POSTGRES_PASSWORD"},  # `cdb db upgrade` never touches Redis
    "web": {"ADMIN_PASSWORD", "SECRET_KEY", "REDIS_PASSWORD", "POSTGRES_PASSWORD"},
    "beat": {"REDIS_PASSWORD", "POSTGRES_PASSWORD"},
    # Starting the Celery app connects to nothing but the broker: no POSTGRES_PASSWORD.
    "flower": {"FLOWER_BASIC_AUTH", "REDIS_PASSWORD"},
    "stream": {"REDIS_PASSWORD"},  # writes live state to Redis, sends tick runs through it
    "prometheus": set(),
    "grafana": {"GF_SECURITY_ADMIN_PASSWORD"},
    "backup": {"POSTGRES_PASSWORD"},  # as PGPASSWORD for pg_dump
}


def _secrets_used(service) -> set[str]:
    """The secret variables whose values reach the service: through its environment (under
    any name), its command or its health check."""
    text = json.dumps(
        [service.get("environment", {}), service.get("command"), service.get("healthcheck")]
    )
    return {name for name in SECRET_VARIABLES if re.search(rf"\$\{{{name}\b", text)}


def test_each_service_gets_exactly_the_secrets_it_needs(services):
    needed = NEEDED_SECRETS | {
        name: {"REDIS_PASSWORD", "POSTGRES_PASSWORD"} for name in _workers(services)
    }
    assert set(services) == set(needed), "a new service: say which secrets it needs"
    for name, service in services.items():
        assert "env_file" not in service, name  # .env would hand every secret to everyone
        assert _secrets_used(service) == needed[name], name
        for variable, value in service.get("environment", {}).items():
            if variable in SECRET_VARIABLES:  # under its own name, from its own variable
                assert str(value).startswith(f"${{{variable}:?"), (name, variable)
    assert not any(
        _secrets_used(s) & {"MEXC_API_KEY", "MEXC_API_SECRET"} for s in services.values()
    )


def test_the_check_above_sees_a_secret_given_to_a_worker(services):
    leaky = {**services["worker-signals"]}
    leaky["environment"] = {**leaky["environment"], "X": "${ADMIN_PASSWORD:-}"}
    assert "ADMIN_PASSWORD" in _secrets_used(leaky)


def test_the_shared_settings_block_holds_every_setting_with_its_default(compose, services):
    from app.config import load_settings

    shared = compose["x-settings"]
    web_only = compose["x-web-settings"]
    fixed = {"CDB_ENV", "STATE_DIR", "DATABASE_URL", "REDIS_URL"}
    not_in_containers = {"WEB_PORT"}  # gunicorn binds 8000 in the container whatever it is
    settings = {name.upper() for name in Settings.model_fields} - SECRET_VARIABLES
    missing = settings - set(shared) - set(web_only) - not_in_containers
    assert not missing, f"add {sorted(missing)} to x-settings as NAME: ${{NAME:-default}}"
    assert set(shared) | set(web_only) <= settings | fixed
    assert not set(shared) & set(web_only)
    defaults = {}
    for variable, value in {**shared, **web_only}.items():
        if variable in fixed:
            continue
        match = re.fullmatch(rf"\$\{{{variable}:-([^}}]*)\}}", str(value))
        assert match, f"{variable}: {value!r} should read ${{{variable}:-default}}"
        defaults[variable.lower()] = match.group(1)
    # The defaults are the settings' own: a .env without the variable changes nothing.
    given = load_settings(env_file=None, **defaults)
    for field in defaults:
        expected = Settings.model_fields[field].get_default(call_default_factory=True)
        assert getattr(given, field) == expected or (field == "flower_url" and not given.flower_url)
    for name, service in _app_services(services).items():
        env = service["environment"]
        assert {k: env[k] for k in shared} == shared, name
        assert (set(web_only) <= set(env)) == (name == "web"), name


def test_redis_keeps_its_password_and_an_append_only_file(services):
    redis = services["redis"]
    assert "--requirepass" in redis["command"] and "--appendonly yes" in redis["command"]
    assert "noeviction" in redis["command"]  # a broker must not drop messages
    assert "-a " not in " ".join(redis["healthcheck"]["test"])  # password not in `ps`


def test_published_ports_are_bound_to_localhost(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    assert {s for s in services if services[s].get("ports")} == {
        "web",
        "flower",
        "prometheus",
        "grafana",
    }


def test_dev_override_mounts_the_code_into_every_app_service(services, override):
    app = _app_services(services)
    assert set(override["services"]) == set(app)
    for name, service in override["services"].items():
        targets = {volume.split(":")[1] for volume in service["volumes"]}
        assert targets == {
            "/app/app",
            "/app/workers",
            "/app/celeryconfig.py",
            "/app/migrations",
        }, name
        assert all(volume.endswith(":ro") for volume in service["volumes"]), name


def test_dockerfile_runs_as_a_non_root_user_and_imports_from_app():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER cdb:cdb$", text, flags=re.MULTILINE)
    assert "PYTHONPATH=/app" in text  # the dev override's mounts win over site-packages
    assert "useradd --system --uid 10001" in text
    for copied in ("app", "workers", "migrations", "celeryconfig.py"):
        assert re.search(rf"^COPY {copied}\b", text, flags=re.MULTILINE), copied
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", ".venv", "tests", "backups"} <= set(ignored)


def test_dockerfile_installs_the_runtime_lock_with_hashes():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY requirements/runtime\.lock ", text, flags=re.MULTILINE)
    installs = re.findall(r"pip install ([^&\n]*)", text)
    assert "--require-hashes -r requirements/runtime.lock" in installs[0]
    # Everything after the lock adds no dependency of its own.
    assert all("--no-deps" in args for args in installs[1:]), installs
    assert "requirements" not in (ROOT / ".dockerignore").read_text().split()


# --- the dependency locks -------------------------------------------------------------------

LOCKS = ("runtime", "dev")


def _lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """{package: (version, hashes)} of requirements/<name>.lock, for this Python (an entry whose
    environment marker does not apply here is checked, then left out)."""
    from packaging.markers import Marker

    text = (ROOT / "requirements" / f"{name}.lock").read_text()
    entries = {}
    for logical in re.sub(r"\\\n", " ", text).splitlines():
        line = logical.split("#", 1)[0].strip()
        if not line:
            continue
        assert not line.startswith("-"), f"{name}.lock: option line {line!r}"
        requirement, _, rest = line.partition(" --")
        options = ("--" + rest).split() if rest else []
        pin, _, marker = (part.strip() for part in requirement.partition(";"))
        match = re.fullmatch(r"([a-z0-9][a-z0-9._-]*)==([^\s]+)", pin)
        assert match, f"{name}.lock: not an exact pin: {pin!r}"
        hashes = [o.removeprefix("--hash=sha256:") for o in options if o.startswith("--hash=")]
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), pin
        assert len(hashes) == len(options), f"{name}.lock: unexpected option in {line!r}"
        if not marker or Marker(marker).evaluate():
            assert match.group(1) not in entries, f"{name}.lock: {pin} twice for this Python"
            entries[match.group(1)] = (match.group(2), hashes)
    return entries


@pytest.fixture(scope="module")
def locks():
    return {name: _lock(name) for name in LOCKS}


def test_the_locks_pin_every_package_with_hashes_and_say_how_to_regenerate(locks):
    for name in LOCKS:
        assert len(locks[name]) > 20, name
        head = (ROOT / "requirements" / f"{name}.lock").read_text().splitlines()[:6]
        assert any("requirements/lock.sh" in line for line in head), name
        assert "/opt/" not in (ROOT / "requirements" / f"{name}.lock").read_text()  # no local index
    assert os.access(ROOT / "requirements" / "lock.sh", os.X_OK)


def test_the_locks_hold_the_proven_versions(locks):
    runtime, dev = locks["runtime"], locks["dev"]
    for lock in (runtime, dev):
        # celery/kombu 5.7.0 kill the worker when Redis restarts with a task in flight.
        assert lock["celery"][0] == "5.6.3"
        assert lock["kombu"][0] == "5.6.2"
    assert {"websockets", "protobuf"} <= set(runtime)
    assert {"pytest", "ruff", "ccxt"} <= set(dev)
    assert not {"pytest", "ruff", "ccxt"} & set(runtime)
    # dev.lock is runtime.lock plus the dev tools, at the same versions.
    assert {name: runtime[name][0] for name in runtime} == {name: dev[name][0] for name in runtime}


def test_the_locks_satisfy_pyproject(locks):
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for lock, wanted in (
        (locks["runtime"], project["dependencies"]),
        (locks["dev"], project["dependencies"] + project["optional-dependencies"]["dev"]),
    ):
        for text in wanted:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            assert name in lock, (
                f"{name} is in pyproject.toml but not locked: run requirements/lock.sh"
            )
            assert requirement.specifier.contains(lock[name][0], prereleases=True), (
                f"{name}=={lock[name][0]} is outside {requirement.specifier}: "
                "run requirements/lock.sh"
            )


def test_backup_service_runs_the_script_with_pg_tools(services):
    backup = services["backup"]
    assert backup["profiles"] == ["backup"]  # not started by `up`
    assert backup["image"] == services["postgres"]["image"]  # pg_dump of the server's version
    assert backup["command"] == ["/bin/sh", "/scripts/backup.sh"]
    assert "./scripts/backup.sh:/scripts/backup.sh:ro" in backup["volumes"]
    assert backup["environment"]["BACKUP_DIR"] == "/backups"
    assert backup["environment"]["PGPASSWORD"].startswith("${POSTGRES_PASSWORD:?")


# --- .env.template --------------------------------------------------------------------------


def _documented() -> set[str]:
    template = (ROOT / ".env.template").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", template, flags=re.MULTILINE))


def test_env_template_lists_every_setting_with_placeholders_for_secrets():
    text = (ROOT / ".env.template").read_text()
    names = _documented()
    assert {name.upper() for name in Settings.model_fields} <= names
    for secret in (
        "REDIS_PASSWORD",
        "POSTGRES_PASSWORD",
        "ADMIN_PASSWORD",
        "GF_SECURITY_ADMIN_PASSWORD",
        "FLOWER_BASIC_AUTH",
        "SECRET_KEY",
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


def test_compose_uses_only_variables_the_template_documents():
    used = set()
    for name in ("docker-compose.yml", "docker-compose.override.yml"):
        text = (ROOT / name).read_text()
        # ${VAR...} is compose's; $${VAR} and $$VAR are escaped for the container's shell.
        used |= set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    assert used, "no variables found: the pattern is broken"
    assert used <= _documented(), used - _documented()


# --- Prometheus -------------------------------------------------------------------------------


def test_prometheus_scrapes_web_and_flower_every_15_seconds(prometheus, services):
    assert prometheus["global"]["scrape_interval"] == "15s"
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert {"web", "flower", "prometheus"} <= set(jobs)
    for job in jobs.values():
        assert job.get("scrape_interval", "15s") == "15s", job["job_name"]
    targets = {
        name: [t for sc in job["static_configs"] for t in sc["targets"]]
        for name, job in jobs.items()
    }
    assert targets["web"] == ["web:8000"] and jobs["web"].get("metrics_path", "/metrics") == (
        "/metrics"
    )
    assert targets["flower"] == ["flower:5555"]
    for name, hosts in targets.items():
        for host in hosts:
            service = host.split(":")[0]
            assert service == "localhost" or service in services, (name, host)


def test_prometheus_loads_the_alert_rules_it_is_given(prometheus, services):
    assert prometheus["rule_files"] == ["alerts.yml"]
    assert (DEPLOY / "prometheus" / "alerts.yml").is_file()
    service = services["prometheus"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in service["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in service["command"]


def test_alert_rules_for_drawdown_service_down_and_stale_data(alerts):
    drawdown = alerts["DailyDrawdownExceeded"]["expr"]
    assert "cdb_daily_drawdown_pct" in drawdown and "cdb_max_daily_drawdown_pct" in drawdown
    assert alerts["TradingHalted"]["expr"].strip() == "cdb_halted == 1"
    assert alerts["ServiceDown"]["expr"].strip() == "up == 0"
    assert alerts["ServiceDown"]["for"] == "1m"
    assert alerts["MarketDataStale"]["expr"].strip() == "cdb_market_data_age_seconds > 120"
    assert alerts["MarketDataStale"]["for"] == "2m"
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"], name


def test_queue_alert_covers_every_queue(alerts):
    import celeryconfig

    expr = alerts["QueueWithoutWorker"]["expr"]
    for queue in celeryconfig.QUEUES:
        assert f'worker=~"{queue}@.*"' in expr and f'"queue", "{queue}"' in expr, queue


# --- Grafana ------------------------------------------------------------------------------------


def test_grafana_provisions_prometheus_and_the_dashboards_folder(services):
    grafana = services["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    provisioning = DEPLOY / "grafana" / "provisioning"
    [datasource] = _yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    assert datasource["uid"] == "cdb-prometheus"
    [provider] = _yaml(provisioning / "dashboards" / "claire-de-binaire.yml")["providers"]
    assert provider["type"] == "file"
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    for kind in ("datasources", "dashboards"):
        assert mounts[f"./deploy/grafana/provisioning/{kind}"] == (
            f"/etc/grafana/provisioning/{kind}"
        )
    for volume in grafana["volumes"]:
        if volume.startswith("./"):
            assert volume.endswith(":ro"), volume
            assert (ROOT / volume.split(":")[0]).exists(), volume
    env = grafana["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GF_SECURITY_ADMIN_PASSWORD:?")
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"


def _panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def _exprs(dashboard):
    return [t["expr"] for panel in _panels(dashboard) for t in panel.get("targets", [])]


def test_dashboards_parse_and_use_the_provisioned_datasource(dashboards):
    uids = [board["uid"] for board in dashboards.values()]
    assert len(set(uids)) == len(uids) == 3
    for name, board in dashboards.items():
        assert board["title"] and board["panels"], name
        ids = [panel["id"] for panel in _panels(board)]
        assert len(set(ids)) == len(ids), name
        for panel in _panels(board):
            for source in (panel, *panel.get("targets", [])):
                assert source["datasource"]["uid"] == "cdb-prometheus", (name, panel["title"])


def test_dashboards_show_what_spec_asks_for(dashboards):
    def metrics(name):
        return set().union(*(metric_names(expr) for expr in _exprs(dashboards[name])))

    assert {"cdb_equity", "cdb_daily_pnl", "cdb_exposure"} <= metrics("portfolio")
    assert {
        "cdb_daily_drawdown_pct",
        "cdb_position_value",
        "cdb_risk_rejections_total",
    } <= metrics("risk")
    assert {
        "flower_events_total",
        "cdb_stage_latency_seconds_bucket",
        "cdb_market_data_age_seconds",
        "up",
    } <= metrics("system")


# --- PromQL: only metrics that exist --------------------------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_KEYWORDS |= {"and", "or", "unless", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels, keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors, $__rate_interval
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == ".":
            continue  # an exponent: 1e3
        if text[match.end() :].lstrip().startswith("(") or match.group() in _KEYWORDS:
            continue
        names.add(match.group())
    return names


def _known(metric: str) -> bool:
    base = re.sub(r"_(bucket|sum|count)$", "", metric)
    return (
        metric in CDB_METRICS
        or base in CDB_METRICS
        or metric in STANDARD_METRICS
        or metric.startswith(STANDARD_PREFIXES)
    )


def test_metric_names_reads_promql():
    assert metric_names(
        "histogram_quantile(0.95, sum by (le, stage) "
        "(rate(cdb_stage_latency_seconds_bucket[$__rate_interval])))"
    ) == {"cdb_stage_latency_seconds_bucket"}
    assert metric_names("cdb_position_value / on(job, instance) group_left cdb_equity") == {
        "cdb_position_value",
        "cdb_equity",
    }
    assert metric_names(
        'label_replace(absent(flower_worker_online{worker=~"a@.*"} == 1), "q", "a", "", "")'
        ' unless on() (up{job="flower"} == 0) or vector(1e3)'
    ) == {"flower_worker_online", "up"}


def test_every_expression_uses_known_metrics_only(dashboards, alerts):
    exprs = [(name, expr) for name, board in dashboards.items() for expr in _exprs(board)]
    exprs += [(name, rule["expr"]) for name, rule in alerts.items()]
    for where, expr in exprs:
        names = metric_names(expr)
        assert names, (where, expr)
        unknown = {name for name in names if not _known(name)}
        assert not unknown, (where, expr, unknown)


# --- the real tools, when they are here -------------------------------------------------------


def _promtool() -> str:
    path = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not path:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return path


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kwargs)


def test_promtool_accepts_the_config_and_the_rules():
    promtool = _promtool()
    for argv in (
        [promtool, "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
        [promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
    ):
        result = _run(argv)
        assert result.returncode == 0, result.stdout + result.stderr


# Synthetic series for `promtool test rules`: the web target goes down at 30 s, the
# drawdown crosses its limit and trading halts at 30 s, market data goes stale at 45 s,
# no worker ever serves the execution queue.
RULE_TESTS = """
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'cdb_daily_drawdown_pct{job="web", instance="web:8000"}'
        values: '0.01 0.03 0.06x20'
      - series: 'cdb_max_daily_drawdown_pct{job="web", instance="web:8000"}'
        values: '0.05x22'
      - series: 'cdb_halted{job="web", instance="web:8000"}'
        values: '0 0 1x20'
      - series: 'cdb_market_data_age_seconds{job="web", instance="web:8000"}'
        values: '5 10 15 200+15x20'
      - series: 'up{job="web", instance="web:8000"}'
        values: '1 1 0x20'
      - series: 'up{job="flower", instance="flower:5555"}'
        values: '1x22'
      - series: 'flower_worker_online{job="flower", worker="market_data@a1"}'
        values: '1x22'
      - series: 'flower_worker_online{job="flower", worker="signals@b2"}'
        values: '1x22'
      - series: 'flower_worker_online{job="flower", worker="risk@c3"}'
        values: '1x22'
      - series: 'flower_worker_online{job="flower", worker="execution@d4"}'
        values: '0x22'
    alert_rule_test:
      - {eval_time: 15s, alertname: DailyDrawdownExceeded, exp_alerts: []}
      - eval_time: 45s
        alertname: DailyDrawdownExceeded
        exp_alerts:
          - exp_labels: {severity: critical, job: web, instance: "web:8000"}
      - {eval_time: 15s, alertname: TradingHalted, exp_alerts: []}
      - eval_time: 45s
        alertname: TradingHalted
        exp_alerts:
          - exp_labels: {severity: critical, job: web, instance: "web:8000"}
      - {eval_time: 1m, alertname: ServiceDown, exp_alerts: []}
      - eval_time: 2m
        alertname: ServiceDown
        exp_alerts:
          - exp_labels: {severity: critical, job: web, instance: "web:8000"}
      - {eval_time: 2m, alertname: MarketDataStale, exp_alerts: []}
      - eval_time: 3m
        alertname: MarketDataStale
        exp_alerts:
          - exp_labels: {severity: warning, job: web, instance: "web:8000"}
      - {eval_time: 2m, alertname: QueueWithoutWorker, exp_alerts: []}
      - eval_time: 4m
        alertname: QueueWithoutWorker
        exp_alerts:
          - exp_labels: {severity: critical, queue: execution}
"""


def test_alert_rules_fire_when_they_should(tmp_path):
    promtool = _promtool()
    # Annotations are templates promtool would compare verbatim: test the rules without them.
    rules = _yaml(DEPLOY / "prometheus" / "alerts.yml")
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    tests = yaml.safe_load(RULE_TESTS)
    tests["rule_files"] = ["alerts.yml"]
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests))
    result = _run([promtool, "test", "rules", "tests.yml"], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _compose_v2() -> list[str]:
    for argv in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(argv[0]):
            result = _run([*argv, "version", "--short"])
            if result.returncode == 0 and result.stdout.strip().lstrip("v").startswith("2"):
                return argv
    pytest.skip("Docker Compose v2 not installed")


def test_docker_compose_accepts_the_files(tmp_path):
    compose = _compose_v2()
    for name in ("docker-compose.yml", "docker-compose.override.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    env = (ROOT / ".env.template").read_text()
    env = env.replace("FLOWER_BASIC_AUTH=<SET_IN_ENV>", "FLOWER_BASIC_AUTH=flower:x-secret-1")
    (tmp_path / ".env").write_text(env.replace("<SET_IN_ENV>", "x-secret-1"))
    clean_env = {k: v for k, v in os.environ.items() if k.upper() not in _documented()}

    def config(*files: str) -> tuple[dict | None, str]:
        argv = [*compose, *files, "--profile", "backup", "config"]
        result = _run(argv, cwd=tmp_path, env=clean_env)
        # Judged by what it prints: some wrappers of the binary lose its exit status.
        parsed = yaml.safe_load(result.stdout) if result.returncode == 0 else None
        return parsed, result.stderr

    for files in (["-f", "docker-compose.yml"], []):
        parsed, errors = config(*files)
        assert parsed and "backup" in parsed["services"], errors
    development, _ = config()
    assert development["services"]["web"]["volumes"]  # the override was read
    # Without the secrets compose refuses to start anything.
    (tmp_path / ".env").write_text(env.replace("<SET_IN_ENV>", ""))
    parsed, errors = config("-f", "docker-compose.yml")
    assert not parsed and "required variable" in errors, errors
