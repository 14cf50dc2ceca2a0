"""Tick-driven runs: when the stream sees something worth a run now, send one.

Three triggers (STREAM_TRIGGERS), each a `Trigger` with a deterministic task id:

    move    a watched symbol's last price moved >= STREAM_MOVE_TRIGGER_PCT since its last
            evaluation (the price the market-data stage evaluated, or that a tick run was
            sent at)                                 tick-move-<S>-<sendTime // bucket>
    stop    a held position's last price is at or below its stop (set_stops)
                                                     tick-stop-<S>-<sendTime // bucket>
    candle  a 1m candle closed (one run a minute, whichever symbol shows it first)
                                                     tick-candle-ALL-<minute>

The bucket is STREAM_TRIGGER_BUCKET_SEC of MEXC's time (sendTime / trade time), so every
streamer that sees the same event derives the same id; the market-data run is keyed by its
Celery task id, so the same trigger sent twice would still be one run. It is not sent twice:

    1. locally, a (kind, symbol) is tried at most once a second (`Cooldown`), not on every tick;
    2. in Redis, atomically (`TriggerGate`, one Lua script): nothing if trigger:<id> exists
       (already sent, by this streamer or another on the same shard) -> "duplicate"; nothing
       if trigger-gap exists (a tick run went out less than STREAM_TRIGGER_MIN_GAP_SEC ago)
       -> "debounced", tried again on a later tick; else both keys are set -> "sent".

A burst of ticks therefore gives one run, and two streamers on one shard give one run per
trigger. A run that could not be sent (broker down) releases its keys and is tried again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import celeryconfig
from app.stream import keys
from app.stream.records import MINUTE_MS, ms_to_datetime

log = logging.getLogger(__name__)

TRIGGER_NAME = "tick"  # market_data_runs.trigger
ALL = "ALL"


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: str  # move | stop | candle
    symbol: str  # ALL for candle
    bucket: int
    reason: str
    price: Decimal | None = None  # the price that fired it (move: the new reference)

    @property
    def task_id(self) -> str:
        """Deterministic: the same (kind, symbol, bucket) is the same market-data run."""
        return f"tick-{self.kind}-{self.symbol}-{self.bucket}"

    @property
    def kwargs(self) -> dict[str, str]:
        return {"trigger": TRIGGER_NAME, "reason": self.reason}


def _pct(value: Decimal) -> str:
    return f"{value * 100:+.2f} %"


class TriggerRules:
    """Decides from prices and candles which triggers fire. Pure and in memory: the
    references (price at the last evaluation) and the stops are set by the streamer."""

    def __init__(self, kinds: frozenset[str], move_pct: Decimal, bucket_ms: int) -> None:
        self.kinds = kinds
        self.move_pct = move_pct
        self.bucket_ms = bucket_ms
        self.references: dict[str, Decimal] = {}
        self.stops: dict[str, Decimal] = {}

    def set_reference(self, symbol: str, price: Decimal | None) -> None:
        if price is not None and price > 0:
            self.references[symbol] = price

    def forget(self, symbol: str) -> None:
        self.references.pop(symbol, None)

    def on_price(self, symbol: str, price: Decimal, event_ms: int) -> list[Trigger]:
        fired = []
        bucket = event_ms // self.bucket_ms
        stop = self.stops.get(symbol)
        if "stop" in self.kinds and stop is not None and price <= stop:
            reason = f"{symbol} at {price} reached its stop {stop}"
            fired.append(Trigger("stop", symbol, bucket, reason, price))
        if "move" in self.kinds:
            reference = self.references.get(symbol)
            if reference is None:
                self.references[symbol] = price
            else:
                change = price / reference - 1
                if abs(change) >= self.move_pct:
                    reason = (
                        f"{symbol} moved {_pct(change)} since its last evaluation "
                        f"({reference} -> {price})"
                    )
                    fired.append(Trigger("move", symbol, bucket, reason, price))
        return fired

    def on_candle_closed(self, symbol: str, minute_open_ms: int) -> Trigger | None:
        if "candle" not in self.kinds:
            return None
        at = ms_to_datetime(minute_open_ms).strftime("%H:%M")
        reason = f"the 1m candle of {at} UTC closed (first seen on {symbol})"
        return Trigger("candle", ALL, minute_open_ms // MINUTE_MS, reason)


class Cooldown:
    """At most one try per key every `seconds` (local, before asking Redis)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._last: dict[Any, float] = {}

    def allow(self, key: Any) -> bool:
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.seconds:
            return False
        self._last[key] = now
        if len(self._last) > 10_000:
            self._last = {k: t for k, t in self._last.items() if now - t < self.seconds}
        return True


_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if tonumber(ARGV[2]) > 0 and redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2]) end
return 2
"""
_RELEASE = """
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
"""
DUPLICATE, DEBOUNCED, SENT = "duplicate", "debounced", "sent"
_OUTCOMES = {0: DUPLICATE, 1: DEBOUNCED, 2: SENT}


class TriggerGate:
    """The Redis side of the debounce, shared by every streamer (an asyncio redis client)."""

    def __init__(self, redis: Any, prefix: str, min_gap_ms: int, bucket_ms: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.min_gap_ms = min_gap_ms
        self.bucket_ms = bucket_ms
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    def _ttl_ms(self, trigger: Trigger) -> int:
        span = MINUTE_MS if trigger.kind == "candle" else self.bucket_ms
        return 2 * span

    async def claim(self, trigger: Trigger) -> str:
        """ "sent" (this streamer sends it), "duplicate" or "debounced"."""
        result = await self._claim(
            keys=[keys.trigger(self.prefix, trigger.task_id), keys.trigger_gap(self.prefix)],
            args=[self._ttl_ms(trigger), self.min_gap_ms, trigger.task_id],
        )
        return _OUTCOMES[int(result)]

    async def release(self, trigger: Trigger) -> None:
        await self._release(
            keys=[keys.trigger(self.prefix, trigger.task_id), keys.trigger_gap(self.prefix)],
            args=[trigger.task_id],
        )


class CelerySender:
    """Sends cdb.market_data.run to the market_data queue, like beat does (blocking: the
    streamer calls it from a worker thread). A bare Celery app with the workers' routing and
    broker settings: no Flask app, no database."""

    def __init__(self, settings: Any, expires_sec: float | None = None) -> None:
        from celery import Celery

        self.app = Celery("cdb-stream")
        self.app.config_from_object(celeryconfig)
        self.app.conf.update(celeryconfig.from_settings(settings))
        self.expires_sec = expires_sec or getattr(settings, "market_data_interval_sec", 15)

    def send(self, trigger: Trigger) -> None:
        self.app.send_task(
            celeryconfig.MARKET_DATA_TASK,
            kwargs=trigger.kwargs,
            task_id=trigger.task_id,
            expires=self.expires_sec,
        )

    def close(self) -> None:
        self.app.close()
