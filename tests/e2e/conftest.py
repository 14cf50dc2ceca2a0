"""The running system as a user starts it: `cdb up --mexc-sim`, on the real Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.conftest import REDIS_URL

ADMIN_PASSWORD = "e2e-" + uuid.uuid4().hex[:12]
FLOWER_AUTH = ("flower", "e2e-" + uuid.uuid4().hex[:12])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    process: subprocess.Popen
    web: str
    flower: str
    state_dir: str
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def mexc(self) -> str:
        """The simulator's URL, from the lines `cdb up` prints once it runs."""

        def banner() -> str | None:
            for line in self.lines:
                label, _, rest = line.strip().partition(":")
                if label == "MEXC" and rest.strip():
                    return rest.split()[0]
            return None

        return self.wait_until(banner, 30, "the MEXC line of the banner")

    def wait_until(self, check, timeout: float, what: str):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"cdb up exited while waiting for {what}:\n{self.output()}")
            try:
                last = check()
                if last:
                    return last
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what} (last: {last!r}):\n{self.output()}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory, redis_prefix) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("cdb-up")
    web_port, flower_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEXC_", "CDB_"))}
    env.update(
        STATE_DIR=str(state),
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=f"{redis_prefix}e2e:",
        WEB_PORT=str(web_port),
        FLOWER_PORT=str(flower_port),
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        FLOWER_BASIC_AUTH=":".join(FLOWER_AUTH),
        SECRET_KEY=uuid.uuid4().hex,
        MARKET_DATA_INTERVAL_SEC="5",
        MIN_QUOTE_VOLUME="0",
        TOP_N="10",
        LOG_LEVEL="INFO",
    )
    env.pop("DATABASE_URL", None)  # the embedded SQLite default, as a user gets it
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "up", "--mexc-sim", "--sim-symbols", "80"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack = Stack(
        process, f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{flower_port}", str(state), env
    )

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            stack.lines.append(line.rstrip())

    threading.Thread(target=read, daemon=True).start()
    try:
        stack.wait_until(
            lambda: httpx.get(f"{stack.web}/health/live", timeout=2).status_code == 200,
            90,
            "the web app",
        )
        yield stack
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
