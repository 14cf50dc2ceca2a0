"""`cdb up --mexc-sim` as a user runs it: the pipeline completes and shows on /metrics; a
start-up failure ends in one line that says what to do."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import FLOWER_AUTH, free_port

pytestmark = pytest.mark.e2e


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_a_pipeline_run_completes_and_appears_on_metrics(stack):
    def executed():
        metrics = samples(httpx.get(f"{stack.web}/metrics", timeout=10).text)
        runs = metrics.get(("cdb_market_data_runs", (("status", "ok"),)), 0)
        done = metrics.get(("cdb_stage_latency_seconds_count", (("stage", "execution"),)), 0)
        return metrics if runs >= 1 and done >= 1 else None

    metrics = stack.wait_until(executed, 120, "an executed pipeline run on /metrics")
    assert metrics[("cdb_equity", ())] > 0
    assert ("cdb_market_data_age_seconds", ()) in metrics
    assert any(name == "flask_http_request_total" for name, _ in metrics)


def test_health_reports_every_dependency(stack):
    def healthy():
        response = httpx.get(f"{stack.web}/health", timeout=10)
        return response if response.status_code == 200 else None

    body = stack.wait_until(healthy, 90, "/health 200").json()
    assert body["status"] == "ok" and body["service"]
    assert set(body["checks"]) >= {"database", "broker", "workers", "beat", "market_data"}


def test_flower_runs_behind_basic_auth_and_sees_the_worker(stack):
    url = f"{stack.flower}/api/workers"
    assert httpx.get(url, timeout=10).status_code == 401

    def worker_seen():
        workers = httpx.get(url, params={"refresh": 1}, auth=FLOWER_AUTH, timeout=20).json()
        return [name for name in workers if name.startswith("cdb@")]

    assert stack.wait_until(worker_seen, 60, "the worker in Flower")


def test_sigterm_stops_every_process(stack):
    children = subprocess.run(
        ["pgrep", "-P", str(stack.process.pid)], capture_output=True, text=True
    ).stdout.split()
    assert len(children) >= 5  # mexc-sim, worker, beat, web, flower
    stack.process.send_signal(signal.SIGTERM)
    assert stack.process.wait(60) == 0
    still = [
        pid
        for pid in children
        if subprocess.run(["kill", "-0", pid], capture_output=True).returncode == 0
    ]
    assert still == [], stack.output()
    assert any("all processes stopped" in line for line in stack.lines)


def _up_failing(tmp_path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEXC_", "CDB_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        STATE_DIR=str(tmp_path / "state"),
        WEB_PORT=str(free_port()),
        FLOWER_PORT=str(free_port()),
    )
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "up", "--mexc-sim", "--sim-symbols", "20"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and done.stderr.rstrip().splitlines()[-1] == errors[0], done.stderr
    return errors[0]


def test_an_unreachable_database_ends_in_one_line(tmp_path):
    port = free_port()  # nothing listens there
    done = _up_failing(tmp_path, DATABASE_URL=f"postgresql://cdb:hunter2@127.0.0.1:{port}/cdb")
    line = _one_error_line(done)
    assert f"127.0.0.1:{port}" in line and "DATABASE_URL" in line
    assert "hunter2" not in done.stderr
    assert "started worker" not in done.stderr


def test_a_web_port_in_use_ends_in_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = _one_error_line(_up_failing(tmp_path, WEB_PORT=str(port)))
    assert f"port {port} (WEB_PORT) is already in use" in line
