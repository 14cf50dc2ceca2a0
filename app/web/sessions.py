"""Admin sessions kept server-side, in `admin_sessions` (app.models.AdminSession).

The signed session cookie carries only a random token; the table holds its SHA-256 (so a
copy of the database logs no one in), who it is for, and when it was made, last used, ends
and was revoked. A session is valid while it is not revoked (logging out revokes it), younger
than ABSOLUTE_LIFETIME however busy, used within IDLE_TIMEOUT, and made with the
ADMIN_USERNAME and ADMIN_PASSWORD still in force: changing either (and restarting the web)
logs every browser out. Every login makes a new one (and revokes the one the browser held), so
a token planted before the login is worth nothing after it. Sessions that ended more than
KEEP_ENDED ago are deleted at every login.

Which password a session was made with is kept as an HMAC of the password keyed with the
session's token: the database holds only the token's hash, so a copy of it gives nothing to
guess the password against, and checking it costs one HMAC per request.
"""

from __future__ import annotations

import hashlib
import hmac
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


def credential_mark(token: str, password: str) -> str:
    """What the session row keeps of the password it was made with (see the module's doc)."""
    return hmac.new(token.encode("utf-8"), password.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Verdict:
    """What a token is worth now: the user, or why not."""

    username: str | None
    ended: str | None = None  # why a known session no longer counts


def open_session(
    database: Database, username: str, password: str, remote_addr: str | None, now: datetime
) -> str:
    """A new session for `username`, who logged in with `password` (the ADMIN_PASSWORD
    setting in force); returns the token for the cookie."""
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
                credential=credential_mark(token, password),
            )
        )
    return token


def check_session(
    database: Database, token: str, username: str, password: str, now: datetime
) -> Verdict:
    """Whether `token` is a live session of `username` made with `password` (the settings in
    force); records the use."""
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
        if row.credential is None or not hmac.compare_digest(
            row.credential, credential_mark(token, password)
        ):
            return Verdict(None, "ADMIN_PASSWORD has changed")
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
