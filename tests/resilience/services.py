"""Private Redis and PostgreSQL servers that a test may kill, stop and restart.

Never the shared ones (127.0.0.1:6379 and :5432): each server here runs on a free port with
its own data and socket folder under a temporary directory that `close()` removes. Passwords
go into configuration files (mode 0600), never onto a command line.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

PG_BIN = Path(os.environ.get("CDB_RESILIENCE_PG_BIN", "/usr/lib/postgresql/15/bin"))
SHARED_PORTS = (5432, 6379)
# PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` OS user.
RUN_AS = "postgres" if os.geteuid() == 0 else None


def missing_tools() -> list[str]:
    """What this machine lacks to run the suite (empty: nothing)."""
    missing = [str(PG_BIN / tool) for tool in ("initdb", "pg_ctl") if not (PG_BIN / tool).exists()]
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if RUN_AS:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            missing.append(f"the OS user {RUN_AS}")
        if shutil.which("runuser") is None:
            missing.append("runuser")
    return missing


def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in SHARED_PORTS:
            return port


def _write_private(path: Path, text: str, owner: str | None = None) -> None:
    path.write_text(text)
    path.chmod(0o600)
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)


class PrivateRedis:
    """A redis-server with a password and no persistence: a restart loses every key, which
    is the harshest broker failure (every queued and unacknowledged message is gone)."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="cdb-resilience-redis-"))
        self.conf = self.folder / "redis.conf"
        _write_private(
            self.conf,
            "\n".join(
                [
                    "bind 127.0.0.1",
                    f"port {self.port}",
                    f"requirepass {password}",
                    'save ""',
                    "appendonly no",
                    f"dir {self.folder}",
                    f"logfile {self.folder / 'redis.log'}",
                    "daemonize no",
                    "",
                ]
            ),
        )
        self.process: subprocess.Popen | None = None
        self.kills = 0

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=5)

    def start(self, timeout: float = 10) -> None:
        self.process = subprocess.Popen(
            ["redis-server", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                client = self.client()
                try:
                    if client.ping():
                        return
                finally:
                    client.close()
            time.sleep(0.05)
        raise AssertionError(f"private redis-server on port {self.port} did not start")

    def kill(self) -> None:
        """kill -9: no shutdown, no save."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.kills += 1

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb as the `postgres` OS user), scram passwords on
    TCP, its socket in its own folder. Durability is off (fsync): it is a test server."""

    USER = "cdb"

    def __init__(self, password: str) -> None:
        self.password = password
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="cdb-resilience-pg-"))
        if RUN_AS:
            owner = pwd.getpwnam(RUN_AS)
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        pwfile = self.folder / "pwfile"
        _write_private(pwfile, password + "\n", owner=RUN_AS)
        self._as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        self.stops = 0

    @staticmethod
    def _as_postgres(*argv: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", RUN_AS, "--"] if RUN_AS else []
        proc = subprocess.run(
            [*prefix, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise AssertionError(f"{argv[0]} failed: {proc.stdout}\n{proc.stderr}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
            "-o", options, "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")
        self.stops += 1

    def url(self, database: str, *, with_password: bool = True, driver: bool = True) -> str:
        scheme = "postgresql+psycopg" if driver else "postgresql"
        auth = f"{self.USER}:{self.password}" if with_password else self.USER
        return f"{scheme}://{auth}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(
            self.url("postgres", driver=False), autocommit=True, connect_timeout=5
        )

    def create_database(self, name: str, template: str | None = None) -> None:
        with self.admin() as conn:
            suffix = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{suffix}')

    def close(self) -> None:
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            self._as_postgres(
                str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )
        shutil.rmtree(self.folder, ignore_errors=True)
