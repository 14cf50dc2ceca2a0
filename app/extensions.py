"""Extensions created unbound here and bound in create_app(); nothing connects at import."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
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
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


db = Database()
