"""`cdb up` where no Redis answers: a private redis-server, or a message saying how to get one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e


def up(state, redis_port: int, path: str | None = None, **extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEXC_", "CDB_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        STATE_DIR=str(state),
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        WEB_PORT=str(free_port()),
        FLOWER_PORT=str(free_port()),
    )
    env.update(extra)
    if path is not None:
        env["PATH"] = path
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "up", "--mexc-sim", "--sim-symbols", "20"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_a_private_redis_server_is_started_and_stopped(tmp_path):
    port = free_port()
    secret = "pw-" + uuid.uuid4().hex
    url = f"redis://:{secret}@127.0.0.1:{port}/0"
    process = up(tmp_path, port, WEB_PORT=str(web := free_port()), REDIS_URL=url)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{web}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stdout.read()
            time.sleep(0.5)
        servers = subprocess.run(
            ["pgrep", "-f", f"redis-server.*:{port}"], capture_output=True, text=True
        ).stdout.split()
        assert servers, "no private redis-server runs"
        assert (tmp_path / "redis" / "appendonlydir").is_dir()
        # The password is in a 0600 config file, not on the command line.
        for pid in servers:
            assert secret.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        conf = tmp_path / "redis" / "redis.conf"
        assert conf.stat().st_mode & 0o777 == 0o600
        assert redis.Redis.from_url(url).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert secret not in output
    assert "a private redis-server started by cdb up" in output
    assert subprocess.run(["pgrep", "-f", f"redis-server.*:{port}"]).returncode == 1


def test_without_redis_server_it_says_how_to_install_it(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    process = up(tmp_path, free_port(), path=str(empty))
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 1
    assert "apt-get install redis-server" in output
    assert "started worker" not in output
