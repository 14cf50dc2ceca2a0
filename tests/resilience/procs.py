"""Child processes of a scenario (Celery workers and beats, gunicorn) and how to kill them.

Each child runs in its own session (process group), like `cdb up` runs them, so a killed
worker's orphaned pool processes can be ended as its supervisor would. Output is kept in
memory with the time each line arrived (kills are dated by the worker's own report) and in a
log file for the post-mortem.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# What the prefork pool logs when one of its processes dies of SIGKILL.
CHILD_KILLED = re.compile(r"pid:(\d+) exited with 'signal 9 \(SIGKILL\)'")


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.25) -> Any:
    """Poll `check` until it returns something true; AssertionError naming `what` after
    `timeout` seconds (with the last value seen)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} ({last!r})")
        time.sleep(every)


class Child:
    def __init__(self, argv: list[str], env: dict[str, str], name: str, log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.lines: list[tuple[float, str]] = []
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("a", buffering=1)
        self.started_at = time.time()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"read-{name}")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append((time.time(), line))
            self._log.write(line + "\n")

    # --- looking at it -------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def tail(self, n: int = 40) -> str:
        return "\n".join(line for _, line in self.lines[-n:])

    def said(self, fragment: str) -> bool:
        return any(fragment in line for _, line in self.lines)

    def wait_for(self, fragment: str, timeout: float = 60) -> None:
        def seen() -> bool:
            if not self.alive:
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            return self.said(fragment)

        wait_until(seen, timeout, f"{self.name} to say {fragment!r}", every=0.1)

    def children(self) -> list[int]:
        """Pids of its direct children (the prefork pool)."""
        found = []
        for task in Path(f"/proc/{self.pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                found += [int(p) for p in task.read_text().split()]
        return found

    def rss_kb(self) -> int:
        """Resident memory of the process and its children, in KiB."""
        return sum(rss_kb(pid) for pid in [self.pid, *self.children()])

    def child_kills(self) -> list[tuple[float, int]]:
        """(when reported, pid) of every pool process that died of SIGKILL."""
        kills = []
        for at, line in self.lines:
            match = CHILD_KILLED.search(line)
            if match:
                kills.append((at, int(match.group(1))))
        return kills

    # --- ending it -----------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the main process only (its pool processes are orphaned)."""
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)

    def kill_group(self) -> None:
        """What a supervisor does after its child died: end the orphans of its group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def stop(self, timeout: float = 30, hard: bool = False) -> int | None:
        """SIGTERM (a warm shutdown) and wait; `hard`: SIGKILL the group at once (the end of a
        scenario, when its services are thrown away)."""
        if self.alive and not hard:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.kill_group()
        if hard:
            self.proc.wait(10)
        self._reader.join(5)
        self._log.close()
        return self.proc.returncode


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def celery_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers", *args]
