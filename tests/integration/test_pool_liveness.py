"""The engine's checkout check on the real PostgreSQL: a pooled connection whose server side
ended is replaced without an error reaching the caller, and a long-idle one is pinged."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from app import extensions
from app.extensions import make_engine


@pytest.fixture
def pooled(pg_url):
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(engine, pid: int) -> None:
    """End a backend from a connection outside the pool under test, and wait until it is gone."""
    with engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(100):
            alive = other.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar_one()
            if not alive:
                return
            other.rollback()  # a new transaction reads pg_stat_activity anew (it is cached per one)
            time.sleep(0.05)
    raise AssertionError(f"backend {pid} did not end")


def test_a_connection_the_server_ended_is_replaced_without_an_error(pooled, pg_url):
    pid = _backend_pid(pooled)
    outsider = make_engine(pg_url)
    try:
        _terminate(outsider, pid)
    finally:
        outsider.dispose()
    with pooled.connect() as conn:  # no OperationalError: the dead one was never handed out
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    assert pooled.pool.checkedout() == 0


def test_a_connection_in_use_is_not_pinged_but_a_long_idle_one_is(pooled, monkeypatch):
    pings = []
    real_ping = pooled.dialect.do_ping

    def counting_ping(dbapi_connection):
        pings.append(1)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(pooled.dialect, "do_ping", counting_ping)
    _backend_pid(pooled)
    _backend_pid(pooled)
    assert pings == []  # just used: the socket check is enough
    monkeypatch.setattr(extensions, "IDLE_PING_SECONDS", 0.0)
    time.sleep(0.01)
    _backend_pid(pooled)
    assert pings == [1]
