"""How the pipeline's tasks retry: transient database and broker errors with bounded
exponential backoff and jitter; everything else fails once, with its reason recorded."""

from __future__ import annotations

import kombu.exceptions
import redis.exceptions
import sqlalchemy.exc

import celeryconfig

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,  # the database is down, restarting, or locked
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection in time
    kombu.exceptions.OperationalError,  # the broker is down while handing on
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)

RETRY: dict = {
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 1,
    "retry_backoff_max": celeryconfig.RETRY_BACKOFF_MAX,
    "retry_jitter": True,
    "max_retries": celeryconfig.RETRY_MAX,
}
