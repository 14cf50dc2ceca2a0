"""Flower against the project's Celery app finds the worker, behind basic auth."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

pytestmark = pytest.mark.integration


def test_flower_sees_the_worker_behind_basic_auth(start_process, stack_env, worker):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**stack_env, "FLOWER_BASIC_AUTH": "ops:flower-test-pw"}
    flower = start_process("flower", "--address=127.0.0.1", f"--port={port}", env=env)
    url = f"http://127.0.0.1:{port}/api/workers"
    deadline, workers = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        try:
            anonymous = httpx.get(url, timeout=5)
            response = httpx.get(
                url, params={"refresh": 1}, auth=("ops", "flower-test-pw"), timeout=15
            )
            workers = response.json() if response.status_code == 200 else {}
        except httpx.HTTPError:
            workers = {}
        if any(name.startswith("itest@") for name in workers):
            break
        time.sleep(1)
    assert any(name.startswith("itest@") for name in workers), flower.output()
    assert anonymous.status_code == 401
    name = next(n for n in workers if n.startswith("itest@"))
    queues = {q["name"] for q in workers[name]["active_queues"]}
    assert queues == {"market_data"}
    assert "flower-test-pw" not in flower.output()
