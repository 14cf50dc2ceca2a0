"""What a bench run owns and removes afterwards: throwaway databases (one per section), a
Redis key prefix of its own, and a temporary folder for state and child-process logs."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

from app import migrate
from app.config import redact_url
from bench.errors import BenchError

DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Resources:
    redis_url: str
    pg_admin_url: str | None  # None: the embedded SQLite
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    root: Path = field(init=False)
    databases: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix=f"cdb-bench-{self.run_id}-"))

    @property
    def sqlite(self) -> bool:
        return self.pg_admin_url is None

    @property
    def prefix(self) -> str:
        """The Redis key prefix of this bench run (REDIS_KEY_PREFIX for its children)."""
        return f"cdbbench-{self.run_id}:"

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def new_database(self, tag: str) -> str:
        """An empty, migrated database for one section; returns its SQLAlchemy URL."""
        if self.pg_admin_url is None:
            url = f"sqlite:///{self.folder('db') / f'{tag}.sqlite3'}"
        else:
            name = f"cdb_bench_{self.run_id}_{tag}"
            try:
                with psycopg.connect(self.pg_admin_url, autocommit=True, connect_timeout=5) as c:
                    c.execute(f'CREATE DATABASE "{name}"')
            except psycopg.Error as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise BenchError(
                    f"cannot create a throwaway database with {redact_url(self.pg_admin_url)} "
                    f"({reason}); start PostgreSQL, or give --pg-admin-url a login that may "
                    "create databases (or use --sqlite)"
                ) from None
            base = self.pg_admin_url.rsplit("/", 1)[0]
            url = base.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
        self.databases.append(url)
        migrate.upgrade(url)
        return url

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=10)

    def cleanup(self, keep_logs: bool = False) -> None:
        """Drop every database, delete every key under the prefix; remove the folder (with
        keep_logs, only the databases in it, so the child logs stay for reading)."""
        for url in self.databases:
            with contextlib.suppress(Exception):
                drop_database(self.pg_admin_url, url)
        self.databases.clear()
        with contextlib.suppress(redis.RedisError):
            client = self.redis()
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
            client.close()
        if keep_logs:
            shutil.rmtree(self.root / "db", ignore_errors=True)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def drop_database(pg_admin_url: str | None, url: str) -> None:
    if pg_admin_url is None:  # SQLite: the file and its WAL
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(pg_admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
