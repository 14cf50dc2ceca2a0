"""scripts/backup.sh against a real, throwaway PostgreSQL database."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import psycopg
import pytest

from tests.conftest import create_database, drop_database

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "backup.sh"
FAKE_PASSWORD = "pw-Secr3t@backup/x"  # '@' and '/' percent-encoded in the URL

if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
    pytest.skip("pg_dump/pg_restore not installed", allow_module_level=True)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _with_password(url: str) -> tuple[str, str]:
    """The URL with a password in it, and that password.

    The test server (scripts/test.sh) trusts local connections, so a made-up password
    is accepted and only shows whether the script keeps it out of its output. A URL
    that already carries the real one is used as it is.
    """
    parts = urlsplit(url)
    if parts.password:
        return url, unquote(parts.password)
    netloc = f"{parts.username or ''}:{quote(FAKE_PASSWORD, safe='')}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), FAKE_PASSWORD


def _run(env: dict[str, str], **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(SCRIPT)],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


@pytest.fixture
def clean_env(tmp_path) -> dict[str, str]:
    """The environment without anything that says which database, or its password."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PG", "BACKUP_"))
        and key not in ("DATABASE_URL", "POSTGRES_PASSWORD")
    }
    env["BACKUP_DIR"] = str(tmp_path / "backups")
    return env


@pytest.fixture
def database() -> Iterator[str]:
    url = create_database("backup_" + uuid.uuid4().hex[:6])
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE backup_probe (id integer PRIMARY KEY, note text NOT NULL)")
        conn.execute("INSERT INTO backup_probe SELECT n, 'row ' || n FROM generate_series(1, 50) n")
    yield url
    drop_database(url)


def test_backups_are_rotated_readable_and_restorable(database, clean_env, tmp_path):
    url, password = _with_password(database)
    dbname = urlsplit(database).path.lstrip("/")
    backups = tmp_path / "backups"
    backups.mkdir()
    other = backups / "other_20200101T000000Z.dump"  # another database's dump: not ours
    other.write_bytes(b"x")

    written = []
    for second in (1, 2, 3):
        stamp = f"20250101T00000{second}Z"
        result = _run(
            clean_env,
            DATABASE_URL=url,  # the SQLAlchemy form, as the app's settings hold it
            BACKUP_KEEP="2",
            BACKUP_STAMP=stamp,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert password not in output and quote(password, safe="") not in output
        written.append(Path(result.stdout.strip()))
        assert written[-1] == backups / f"{dbname}_{stamp}.dump"

    remaining = sorted(p.name for p in backups.iterdir())
    assert remaining == sorted([written[1].name, written[2].name, other.name])
    assert not list(backups.glob(".*partial"))
    assert oct(written[2].stat().st_mode & 0o777) == "0o600"

    listing = subprocess.run(
        ["pg_restore", "--list", str(written[2])], capture_output=True, text=True, check=True
    )
    assert "TABLE public backup_probe" in listing.stdout
    assert "TABLE DATA public backup_probe" in listing.stdout

    # The restore the script's header documents, into a fresh database.
    target = create_database("restore_" + uuid.uuid4().hex[:6])
    try:
        restore = ["pg_restore", f"--dbname={_libpq(target)}", "--no-owner", "--single-transaction"]
        subprocess.run(
            [*restore, str(written[2])],
            capture_output=True,
            text=True,
            check=True,
        )
        with psycopg.connect(_libpq(target)) as conn:
            assert conn.execute("SELECT count(*) FROM backup_probe").fetchone() == (50,)
    finally:
        drop_database(target)


def test_password_from_postgres_password_is_never_printed(database, clean_env, tmp_path):
    result = _run(
        clean_env,
        DATABASE_URL=_libpq(database),
        POSTGRES_PASSWORD="pg-Env-Secret-42",  # unused by a trusting server, filled in all the same
    )
    assert result.returncode == 0, result.stderr
    assert "pg-Env-Secret-42" not in result.stdout + result.stderr
    assert len(list((tmp_path / "backups").glob("*.dump"))) == 1


def test_missing_database_url_is_an_error(clean_env, tmp_path):
    result = _run(clean_env)
    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stderr
    assert not (tmp_path / "backups").exists()


def test_a_failing_pg_dump_is_an_error_and_deletes_nothing(database, clean_env, tmp_path):
    url, password = _with_password(database)
    missing = url.rsplit("/", 1)[0] + "/cdb_no_such_database_" + uuid.uuid4().hex[:6]
    backups = tmp_path / "backups"
    backups.mkdir()
    old = backups / (missing.rsplit("/", 1)[1] + "_20200101T000000Z.dump")
    old.write_bytes(b"old")

    result = _run(clean_env, DATABASE_URL=missing, BACKUP_KEEP="1")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "pg_dump failed" in result.stderr and "no backup written" in result.stderr
    assert password not in output and quote(password, safe="") not in output
    assert [p.name for p in backups.iterdir()] == [old.name]  # no partial file, nothing deleted


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"DATABASE_URL": "sqlite:///var/cdb.sqlite3"}, "not a postgresql:// URL"),
        ({"DATABASE_URL": "postgresql://cdb@127.0.0.1:5432/"}, "names no database"),
        ({"DATABASE_URL": "postgresql://cdb@127.0.0.1/db", "BACKUP_KEEP": "0"}, "BACKUP_KEEP"),
        ({"DATABASE_URL": "postgresql://cdb@127.0.0.1/db", "BACKUP_KEEP": "x"}, "BACKUP_KEEP"),
        ({"DATABASE_URL": "postgresql://cdb@127.0.0.1/db", "BACKUP_STAMP": "../x"}, "BACKUP_STAMP"),
    ],
)
def test_unusable_settings_are_refused_before_anything_runs(clean_env, tmp_path, extra, message):
    result = _run(clean_env, **extra)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (tmp_path / "backups").exists()
