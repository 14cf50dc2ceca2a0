"""Shared fixtures: a throwaway PostgreSQL database and a private Redis key prefix per run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
import redis

PG_ADMIN_URL = os.environ.get(
    "CDB_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("CDB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:8]
# A simulator scenario: a jump plus a steady rise, so BTCUSDT's momentum is high and its
# current candle up, and the strategy buys whatever the seeded market does on its own. In
# the first seconds of a minute the simulator's current candle has not moved yet (close =
# open), so a pass then rightly finds "last candle down": give it a few passes.
RALLY = "BTCUSDT:price_factor=1.1,trend_pct_per_min=1,depth_factor=50"


def run_row(run_key: str, started_at: datetime) -> dict[str, Any]:
    """A market_data_runs row of a run that fetched and stored nothing."""
    return {
        "run_key": run_key,
        "trigger": "beat",
        "status": "ok",
        "started_at": started_at,
        "parameters": {},
        "screened_symbols": [],
        "stored_symbols": [],
        "rejections": [],
        "retries": [],
    }


def _admin() -> psycopg.Connection:
    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


def create_database(tag: str) -> str:
    """Create an empty database named for this test run; returns its SQLAlchemy URL."""
    name = f"cdb_test_{RUN_ID}_{tag}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    url = create_database(uuid.uuid4().hex[:6])
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    """A key prefix no other test run uses; its keys are deleted at the end."""
    prefix = f"cdbtest-{RUN_ID}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
