"""A child process of `cdb up`: started in its own process group, watched, restarted with
backoff, described in supervisor.json."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
STABLE_SECONDS = 60.0


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return (
        datetime.fromtimestamp(timestamp, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):
        _libc = ctypes.CDLL(None, use_errno=True)


def _in_child() -> None:
    """Runs in the child between fork and exec: end it with SIGTERM if `cdb up` dies."""
    if _libc is not None:
        _libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    infrastructure: bool = False  # stopped after the others (redis-server, mexc-sim)
    process: subprocess.Popen | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    last_restart_at: float | None = None
    up_since: float | None = None
    started: float = 0.0  # monotonic
    backoff: float = BACKOFF_FIRST_SECONDS
    restart_due: float | None = None  # monotonic
    next_restart_at: float | None = None  # wall clock, for supervisor.json

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        try:
            stdout = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            stdout = subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            start_new_session=True,  # own process group: stray grandchildren can be ended
            preexec_fn=_in_child if _libc is not None else None,
        )
        self.started = time.monotonic()
        self.up_since = time.time()
        self.restart_due = self.next_restart_at = None

    def kill_group(self) -> None:
        """SIGKILL whatever is left in the child's process group (e.g. orphaned pool
        processes of a worker that was killed)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def as_dict(self) -> dict[str, object]:
        running = self.running
        return {
            "pid": self.process.pid if running and self.process else None,
            "running": running,
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
            "last_restart_at": iso(self.last_restart_at),
            "up_since": iso(self.up_since) if running else None,
            "next_restart_at": iso(self.next_restart_at),
        }
