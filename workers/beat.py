"""Exactly one beat sends: a lease in Redis, renewed on every tick.

A second `celery beat` started by mistake (or a standby on another machine) finds the lease
held, sends nothing and checks again every few seconds; it takes over within LEASE_SECONDS
when the holder stops renewing (it died or lost Redis). While Redis is unreachable no beat
sends — a task could not be sent then anyway.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

import redis
from celery.beat import PersistentScheduler

log = logging.getLogger(__name__)

LEASE_SECONDS = 30
STANDBY_CHECK_SECONDS = 5.0
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class BeatLease:
    def __init__(self, client: redis.Redis, key: str, seconds: int = LEASE_SECONDS) -> None:
        self.client = client
        self.key = key
        self.ms = seconds * 1000
        self.token = uuid.uuid4().hex
        self.held = False

    def hold(self) -> bool:
        """Take or renew the lease; False while another beat holds it (or Redis is away)."""
        try:
            held = bool(
                self.client.eval(_RENEW, 1, self.key, self.token, self.ms)
                or self.client.set(self.key, self.token, nx=True, px=self.ms)
            )
        except redis.RedisError as exc:
            if self.held:
                log.warning("beat lease: Redis unreachable (%s); not sending", type(exc).__name__)
            held = False
        if held != self.held:
            if held:
                log.info("beat holds the lease: sending the schedule", extra={"lease": self.key})
            else:
                log.warning(
                    "another beat holds the lease (or Redis is away): standing by",
                    extra={"lease": self.key},
                )
        self.held = held
        return held

    def release(self) -> None:
        with contextlib.suppress(redis.RedisError):
            self.client.eval(_RELEASE, 1, self.key, self.token)
        self.held = False


class LeasedScheduler(PersistentScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        prefix = (self.app.conf.broker_transport_options or {}).get("global_keyprefix", "")
        client = redis.Redis.from_url(
            self.app.conf.broker_url, socket_connect_timeout=3, socket_timeout=3
        )
        self.lease = BeatLease(client, f"{prefix}cdb:beat-lease")

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self.lease.hold():
            return STANDBY_CHECK_SECONDS
        return min(super().tick(*args, **kwargs), STANDBY_CHECK_SECONDS)

    def close(self) -> None:
        super().close()
        self.lease.release()
