"""Flower through app.flower, against the project's Celery app: it finds the worker behind
basic auth, and its write API is refused unless FLOWER_ALLOW_WRITE=true."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from app import flower as wrapper
from tests.integration.conftest import ROOT, Process

pytestmark = pytest.mark.integration

AUTH = ("ops", "flower-test-pw")
# Every write URL of Flower 2.2 with a sample argument, and what it can do.
WRITES = {
    "/api/worker/shutdown/{worker}": "shut a worker down",
    "/api/worker/pool/restart/{worker}": "restart its pool",
    "/api/worker/pool/grow/{worker}": "grow its pool",
    "/api/worker/pool/shrink/{worker}": "shrink its pool",
    "/api/worker/pool/autoscale/{worker}": "autoscale its pool",
    "/api/worker/queue/add-consumer/{worker}": "consume another queue",
    "/api/worker/queue/cancel-consumer/{worker}": "stop consuming a queue",
    "/api/task/apply/cdb.market_data.run": "run a task and wait",
    "/api/task/async-apply/cdb.market_data.run": "send a task",
    "/api/task/send-task/cdb.market_data.run": "send a task by name",
    "/api/task/abort/{task}": "abort a task",
    "/api/task/timeout/cdb.market_data.run": "change time limits",
    "/api/task/rate-limit/cdb.market_data.run": "change the rate limit",
    "/api/task/revoke/{task}": "revoke or terminate a task",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_flower(env: dict[str, str], port: int) -> Process:
    argv = [sys.executable, "-m", "app.flower", "--address=127.0.0.1", f"--port={port}"]
    return Process(argv, env, "flower")


def wait_for_worker(flower: Process, port: int) -> str:
    url = f"http://127.0.0.1:{port}/api/workers"
    deadline, workers = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, params={"refresh": 1}, auth=AUTH, timeout=15)
            workers = response.json() if response.status_code == 200 else {}
        except httpx.HTTPError:
            workers = {}
        if any(name.startswith("itest@") for name in workers):
            return next(n for n in workers if n.startswith("itest@"))
        time.sleep(1)
    raise AssertionError("Flower never saw the worker:\n" + flower.output())


@pytest.fixture(scope="module")
def read_only(stack_env, worker):
    port = free_port()
    env = {**stack_env, "FLOWER_BASIC_AUTH": ":".join(AUTH)}
    env.pop(wrapper.ALLOW_WRITE, None)
    flower = start_flower(env, port)
    name = wait_for_worker(flower, port)
    yield flower, port, name
    flower.stop()


def test_flower_sees_the_worker_behind_basic_auth(read_only):
    flower, port, name = read_only
    url = f"http://127.0.0.1:{port}/api/workers"
    assert httpx.get(url, timeout=5).status_code == 401
    workers = httpx.get(url, auth=AUTH, timeout=15).json()
    queues = {q["name"] for q in workers[name]["active_queues"]}
    assert queues == {"market_data"}
    assert httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=5).text == "OK"
    assert "flower-test-pw" not in flower.output()


def test_the_write_api_is_refused_by_default(read_only):
    _, port, name = read_only
    base = f"http://127.0.0.1:{port}"
    for path in WRITES:
        url = base + path.format(worker=name, task=uuid.uuid4())
        assert httpx.post(url, timeout=5).status_code == 401, path  # no login: 401 first
        refused = httpx.post(url, auth=AUTH, data={"n": "1"}, timeout=5)
        assert refused.status_code == 403, (path, refused.text)
        assert "FLOWER_ALLOW_WRITE=true" in refused.text, path
    # The worker kept its pool and its queue (nothing reached it).
    workers = httpx.get(f"{base}/api/workers", params={"refresh": 1}, auth=AUTH, timeout=15)
    assert {q["name"] for q in workers.json()[name]["active_queues"]} == {"market_data"}
    # The pages still work, without the buttons that would call the write API.
    page = httpx.get(f"{base}/worker/{name}", auth=AUTH, timeout=15)
    assert page.status_code == 200 and "Shut Down" not in page.text


def test_the_wrapper_refuses_every_write_handler_flower_has():
    import flower.urls

    handlers = list(flower.urls.handlers)
    refused = wrapper.refuse_writes(handlers)
    assert sorted(p.replace("(.+)", "") for p in refused) == sorted(
        p.rsplit("/", 1)[0] + "/" for p in WRITES
    )
    # What stays answers GET only (or is the 404 catch-all and the tasks table's POST).
    for spec in handlers:
        cls = spec.handler_class if hasattr(spec, "handler_class") else spec[1]
        assert not wrapper.is_write_handler(cls), cls
    assert wrapper.celery_argv(["--quiet", "--port=1"], allow_write=False) == [
        "celery",
        "-A",
        "workers",
        "--quiet",
        "flower",
        "--port=1",
        "--read_only=true",
    ]


def test_writes_are_allowed_with_flower_allow_write(stack_env, worker):
    port = free_port()
    env = {**stack_env, "FLOWER_BASIC_AUTH": ":".join(AUTH), wrapper.ALLOW_WRITE: "true"}
    flower = start_flower(env, port)
    try:
        name = wait_for_worker(flower, port)
        page = httpx.get(f"http://127.0.0.1:{port}/worker/{name}", auth=AUTH, timeout=15)
        assert "Shut Down" in page.text  # the buttons are back
        task = str(uuid.uuid4())  # revoking an unknown task id changes nothing
        url = f"http://127.0.0.1:{port}/api/task/revoke/{task}"
        assert httpx.post(url, timeout=5).status_code == 401
        answer = httpx.post(url, auth=AUTH, timeout=15)
        assert answer.status_code == 200, (answer.text, flower.output())
        assert answer.json() == {"message": f"Revoked '{task}'"}
    finally:
        flower.stop()


def test_a_malformed_flower_allow_write_stops_the_start(stack_env):
    env = {**stack_env, wrapper.ALLOW_WRITE: "maybe"}
    done = subprocess.run(
        [sys.executable, "-m", "app.flower", f"--port={free_port()}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: FLOWER_ALLOW_WRITE='maybe' is not true or false; use true or false"
    )
