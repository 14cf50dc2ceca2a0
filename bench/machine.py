"""What the figures were measured on."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import celery
import kombu
import redis
import sqlalchemy
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    # Read-only: --no-optional-locks keeps `git status` from refreshing the index.
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout.strip()
    return None


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages: other work on the machine makes figures noisy."""
    with contextlib.suppress(OSError, ValueError):
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    return None


def describe(redis_url: str, pg_admin_url: str | None) -> dict[str, object]:
    postgres = None
    if pg_admin_url is not None:
        with contextlib.suppress(Exception):
            url = pg_admin_url.replace("postgresql://", "postgresql+psycopg://", 1)
            engine = create_engine(url)
            with engine.connect() as conn:
                postgres = conn.execute(text("SHOW server_version")).scalar()
            engine.dispose()
    redis_version = None
    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        redis_version = client.info("server").get("redis_version")
        client.close()
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": postgres,
        "sqlite": sqlite3.sqlite_version if pg_admin_url is None else None,
        "redis": redis_version,
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "load_average_at_start": load_average(),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_modified_files": None if status is None else len(status.splitlines()),
    }
