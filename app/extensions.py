"""Extensions created unbound here and bound in create_app(); nothing connects at import."""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, scoped_session, sessionmaker


class Database:
    """One engine and a scoped session per process, created on first use."""

    def __init__(self) -> None:
        self.url: str | None = None
        self._engine: Engine | None = None
        self.session = scoped_session(sessionmaker(expire_on_commit=False))

    def init_app(self, app: Any, url: str) -> None:
        self.configure(url)
        app.extensions["db"] = self
        app.teardown_appcontext(lambda _exc: self.session.remove())

    def configure(self, url: str) -> None:
        if self._engine is not None and url != self.url:
            self.session.remove()  # it is bound to the old engine
            self._engine.dispose()
            self._engine = None
        self.url = url

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            if self.url is None:
                raise RuntimeError("database not configured: call create_app() first")
            self._engine = make_engine(self.url)
            self.session.configure(bind=self._engine)
        return self._engine

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        self.engine  # noqa: B018 - bind the session factory on first use
        session = self.session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise

    def dispose(self) -> None:
        self.session.remove()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def dispose_after_fork(self) -> None:
        """A forked worker must not share the parent's pooled connections."""
        self.session.remove()
        if self._engine is not None:
            self._engine.dispose(close=False)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = create_engine(url, pool_size=5, max_overflow=5, connect_args=_utc_session(url))
    _check_on_checkout(engine)
    return engine


def _utc_session(url: str) -> dict[str, str]:
    """Sessions in UTC, whatever the server's TimeZone: timestamps come back in UTC already
    (psycopg's `timezone.utc`), so reading one converts nothing. Options in the URL stay."""
    given = make_url(url).query.get("options")
    given = " ".join(given) if isinstance(given, tuple) else given
    return {"options": f"{given} -c TimeZone=UTC" if given else "-c TimeZone=UTC"}


# A pooled connection idle for longer than this is pinged (a round trip) before use.
IDLE_PING_SECONDS = 30.0


def _check_on_checkout(engine: Engine) -> None:
    """pool_pre_ping's safety at a fraction of its cost: a pooled connection whose server hung
    up (a restart or stop sends its close, so the socket turns readable while idle) is
    replaced without a round trip; one idle for longer than IDLE_PING_SECONDS is pinged as
    pre-ping would. A DisconnectionError makes the pool try a fresh connection."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _idle(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _alive(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if _hung_up(dbapi_connection):
            raise DisconnectionError("the server closed this pooled connection")
        if time.monotonic() - record.info.get("idle_since", 0.0) <= IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("a pooled connection did not answer its ping") from exc


def _hung_up(dbapi_connection: Any) -> bool:
    """True when an idle connection is closed or has something to read: between statements
    the server only writes to say it is ending the connection."""
    if getattr(dbapi_connection, "closed", False):
        return True
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:
        return False
    try:
        readable, _, _ = select.select([fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


db = Database()
