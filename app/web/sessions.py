"""Admin sessions kept server-side, in `admin_sessions` (app.models.AdminSession).

The signed session cookie carries only a random token; the table holds its SHA-256 (so a
copy of the database logs no one in), who it is for, and when it was made, last used, ends
and was revoked. A session is valid while it is not revoked (logging out revokes it), younger
than ABSOLUTE_LIFETIME however busy, and used within IDLE_TIMEOUT. Every login makes a new
one (and revokes the one the browser held), so a token planted before the login is worth
nothing after it. Sessions that ended more than KEEP_ENDED ago are deleted at every login.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete

from app.extensions import Database
from app.models import AdminSession

ABSOLUTE_LIFETIME = timedelta(hours=8)
IDLE_TIMEOUT = timedelta(minutes=30)
TOUCH_EVERY = timedelta(seconds=15)  # last_seen_at is written at most this often
KEEP_ENDED = timedelta(days=1)
TOKEN_BYTES = 32
MAX_TOKEN = 128  # anything longer in a cookie is no token of ours


def token_id(token: str) -> str:
    """The primary key stored for a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """What a token is worth now: the user, or why not."""

    username: str | None
    ended: str | None = None  # why a known session no longer counts


def open_session(database: Database, username: str, remote_addr: str | None, now: datetime) -> str:
    """A new session for `username`; returns the token for the cookie."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with database.transaction() as session:
        session.execute(delete(AdminSession).where(AdminSession.expires_at < now - KEEP_ENDED))
        session.add(
            AdminSession(
                id=token_id(token),
                username=username,
                created_at=now,
                last_seen_at=now,
                expires_at=now + ABSOLUTE_LIFETIME,
                revoked_at=None,
                remote_addr=(remote_addr or "")[:64] or None,
            )
        )
    return token


def check_session(database: Database, token: str, username: str, now: datetime) -> Verdict:
    """Whether `token` is a live session of `username`; records the use."""
    if not token or len(token) > MAX_TOKEN:
        return Verdict(None)
    with database.transaction() as session:
        row = session.get(AdminSession, token_id(token))
        if row is None:
            return Verdict(None)
        if row.revoked_at is not None:
            return Verdict(None, "you logged out (or the session was revoked)")
        if now >= row.expires_at:
            hours = ABSOLUTE_LIFETIME.total_seconds() / 3600
            return Verdict(None, f"a session lasts {hours:.0f} h at most")
        if now - row.last_seen_at >= IDLE_TIMEOUT:
            minutes = IDLE_TIMEOUT.total_seconds() / 60
            return Verdict(None, f"nothing was done for {minutes:.0f} min")
        if row.username != username:
            return Verdict(None, "ADMIN_USERNAME has changed")
        if now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now
        return Verdict(row.username)


def revoke(database: Database, token: str | None, now: datetime) -> None:
    if not token or len(token) > MAX_TOKEN:
        return
    with database.transaction() as session:
        row = session.get(AdminSession, token_id(token))
        if row is not None and row.revoked_at is None:
            row.revoked_at = now
