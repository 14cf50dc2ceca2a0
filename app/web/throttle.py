"""The admin login throttle, per client address and per username, from `login_attempts`.

Every attempt is recorded (app.models.LoginAttempt), refused ones included. After FREE_FAILURES
failures within WINDOW (counted since that address's or username's last success), each further
attempt must wait 2^(n - FREE_FAILURES) s after the newest failure, n being the failures so
far, at most MAX_WAIT: 1 s after the fifth, 2 s after the sixth ... 15 min. An attempt made
while it has to wait is refused unchecked (429) and counts as one more failure, so hammering
only makes the wait longer; it ends at most MAX_WAIT after the last attempt. Attempts older
than KEEP are deleted at every successful login.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.extensions import Database
from app.models import LoginAttempt

WINDOW = timedelta(minutes=15)
FREE_FAILURES = 5
MAX_WAIT = timedelta(minutes=15)
KEEP = timedelta(days=30)
MAX_KEY = 64  # the columns' length


def backoff(failures: int) -> timedelta:
    """How long after the newest of `failures` failures the next attempt must wait."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    exponent = failures - FREE_FAILURES
    if exponent >= 20:  # 2^20 s is far beyond the cap anyway
        return MAX_WAIT
    return min(timedelta(seconds=2**exponent), MAX_WAIT)


@dataclass(frozen=True)
class Throttled:
    seconds: int  # for Retry-After, rounded up
    by: str  # "address" or "username"
    failures: int


def _wait(
    session: Session, column: InstrumentedAttribute[str], value: str, now: datetime
) -> tuple[timedelta, int]:
    since = now - WINDOW
    last_success = session.scalar(
        select(func.max(LoginAttempt.at)).where(
            column == value, LoginAttempt.success.is_(True), LoginAttempt.at > since
        )
    )
    floor = max(since, last_success) if last_success is not None else since
    count, newest = session.execute(
        select(func.count(), func.max(LoginAttempt.at)).where(
            column == value, LoginAttempt.success.is_(False), LoginAttempt.at > floor
        )
    ).one()
    if newest is None:
        return timedelta(0), 0
    return max(timedelta(0), newest + backoff(count) - now), count


def throttled(
    database: Database, remote_addr: str, username: str, now: datetime
) -> Throttled | None:
    """Whether an attempt from `remote_addr` for `username` has to wait, and how long."""
    with database.transaction() as session:
        by_address = _wait(session, LoginAttempt.remote_addr, remote_addr[:MAX_KEY], now)
        by_username = _wait(session, LoginAttempt.username, username[:MAX_KEY], now)
    (wait, failures), by = max((by_address, "address"), (by_username, "username"))
    if wait <= timedelta(0):
        return None
    return Throttled(max(1, math.ceil(wait.total_seconds())), by, failures)


def record(
    database: Database, remote_addr: str, username: str, success: bool, now: datetime
) -> None:
    with database.transaction() as session:
        session.add(
            LoginAttempt(
                at=now,
                remote_addr=remote_addr[:MAX_KEY],
                username=username[:MAX_KEY],
                success=success,
            )
        )
        if success:
            session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - KEEP))
