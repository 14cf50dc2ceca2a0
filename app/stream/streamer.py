"""The streamer: MEXC's spot streams in, live market state in Redis out, tick runs sent.

    streamer = Streamer(stream_settings, redis, shard=Shard(0, 1), url=..., sender=...)
    await streamer.run(stop_event)

Every STREAM_WATCH_POLL_SEC it reads the watched set and the stops (app/stream/state.py),
keeps the symbols of its shard, and spreads their channels over connections of at most
STREAM_MAX_SUBSCRIPTIONS (app/stream/shards.py); shard 0 also keeps a connection with the
miniTickers channel. Frames update per-symbol state in memory (app/stream/market.py), which
a StateWriter flushes to Redis in batches, and feed the trigger rules
(app/stream/triggers.py). Every second it writes its connections' status and its rates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections import Counter, deque
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from redis.exceptions import RedisError

from app.exchange.proto import BookTicker, Deals, Frame, Kline, MiniTickers
from app.stream import channels, keys
from app.stream.config import StreamSettings
from app.stream.connection import Connection
from app.stream.market import SymbolLive
from app.stream.records import BookState, DealState, KlineState, MiniTickerState
from app.stream.shards import Shard, plan_connections, symbols_per_connection
from app.stream.state import parse_stops, parse_watched
from app.stream.triggers import (
    DUPLICATE,
    SENT,
    Cooldown,
    Trigger,
    TriggerGate,
    TriggerRules,
)
from app.stream.writer import StateWriter

log = logging.getLogger(__name__)

MINI = "mini"
STATUS_EVERY_SEC = 1.0
RATE_WINDOW_SEC = 10.0
PRUNE_STATUS_EVERY_SEC = 30.0
TRIGGER_COOLDOWN_SEC = 1.0
_SYMBOL_KINDS = {BookTicker: "bookTicker", Deals: "deals", Kline: "kline"}
STOP_GRACE_SEC = 5.0  # a connection still in its handshake after stop() is cancelled


class Sender(Protocol):
    def send(self, trigger: Trigger) -> None: ...


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Streamer:
    def __init__(
        self,
        settings: StreamSettings,
        redis: Any,
        *,
        shard: Shard,
        url: str,
        sender: Sender | None = None,
        instance: str | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.prefix = settings.redis_key_prefix
        self.shard = shard
        self.url = url
        self.sender = sender
        self.instance = instance or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"
        self.writer = StateWriter(
            redis,
            self.prefix,
            settings.stream_symbol_ttl_sec,
            settings.stream_deals_kept,
            settings.stream_klines_kept,
            settings.stream_history_kept,
        )
        bucket_ms = settings.stream_trigger_bucket_sec * 1000
        self.rules = TriggerRules(
            settings.trigger_kinds, settings.stream_move_trigger_pct, bucket_ms
        )
        self.gate = TriggerGate(
            redis, self.prefix, int(settings.stream_trigger_min_gap_sec * 1000), bucket_ms
        )
        self.cooldown = Cooldown(TRIGGER_COOLDOWN_SEC)
        self.connections: dict[str, Connection] = {}
        self.slots: dict[int, frozenset[str]] = {}
        self.owned: frozenset[str] = frozenset()
        self.symbols: dict[str, SymbolLive] = {}
        self.counts: Counter[str] = Counter()  # messages by kind, for the rates
        self.trigger_counts: Counter[str] = Counter()
        self.started_ms = _now_ms()
        self._conn_tasks: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._inflight: set[tuple[str, str]] = set()
        self._watched_at: int | None = None
        self._rate_samples: deque[tuple[float, Counter[str]]] = deque()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="stream-trigger")
        self._redis_failing = False

    # ---- life --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        log.info(
            "streamer started",
            extra={"shard": str(self.shard), "url": self.url, "instance": self.instance},
        )
        if self.shard.carries_mini_tickers:
            self._open(MINI).set_channels({channels.MINI_TICKERS})
        loops = [
            asyncio.create_task(self._watch_loop(), name="stream-watch"),
            asyncio.create_task(self._flush_loop(), name="stream-flush"),
        ]
        try:
            await stop.wait()
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._shutdown()
        log.info("streamer stopped", extra={"instance": self.instance})

    async def _shutdown(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.connections.values()))
        await asyncio.gather(
            *(asyncio.wait_for(t, STOP_GRACE_SEC) for t in self._conn_tasks.values()),
            return_exceptions=True,
        )
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        for name in self.connections:
            self.writer.drop_status(keys.connection_field(self.instance, name))
        self.writer.drop_status(keys.instance_field(self.instance))
        await self.writer.flush()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _open(self, name: str) -> Connection:
        conn = Connection(
            f"{self.shard}:{name}",
            self.url,
            self.settings,
            self._on_frame,
            on_event=self._on_event,
        )
        self.connections[name] = conn
        self._conn_tasks[name] = asyncio.create_task(conn.run(), name=f"stream:{conn.name}")
        return conn

    async def _close(self, name: str) -> None:
        conn = self.connections.pop(name)
        task = self._conn_tasks.pop(name)
        await conn.stop()
        await asyncio.gather(asyncio.wait_for(task, STOP_GRACE_SEC), return_exceptions=True)
        self.writer.drop_status(keys.connection_field(self.instance, name))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- what to watch -----------------------------------------------------------------------

    async def _watch_loop(self) -> None:
        while True:
            try:
                await self._watch_once()
            except Exception:  # a bug must not stop the streamer from following the set
                log.exception("reading the watched symbols failed")
            await asyncio.sleep(self.settings.stream_watch_poll_sec)

    async def _watch_once(self) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(keys.watched(self.prefix))
            pipe.hgetall(keys.stops(self.prefix))
            raw_watched, raw_stops = await pipe.execute()
        except (RedisError, OSError) as exc:
            if not self._redis_failing:
                log.error(
                    "cannot read the watched symbols from Redis; keeping the current ones",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
            self._redis_failing = True
            return
        if self._redis_failing:
            log.info("reading the watched symbols from Redis again")
        self._redis_failing = False
        await self._apply(parse_watched(raw_watched), parse_stops(raw_stops))

    async def _apply(self, watched: Any, stops: dict[str, Any]) -> None:
        symbols = set(watched.symbols if watched is not None else ()) | set(stops)
        owned = frozenset(s for s in symbols if self.shard.owns(s))
        self.rules.stops = {s: p for s, p in stops.items() if s in owned}
        for symbol in self.owned - owned:
            self.symbols.pop(symbol, None)
            self.rules.forget(symbol)
        for symbol in owned - self.owned:
            self.symbols[symbol] = SymbolLive(symbol)
        if watched is not None and watched.at_ms != self._watched_at:
            # A market-data run evaluated these symbols: moves count from its prices.
            self._watched_at = watched.at_ms
            for symbol in owned:
                live = self.symbols[symbol]
                reference = watched.prices.get(symbol, live.last_price)
                if reference is None:
                    self.rules.forget(symbol)
                else:
                    self.rules.set_reference(symbol, reference)
        if owned != self.owned:
            log.info(
                "watched symbols changed",
                extra={
                    "shard": str(self.shard),
                    "added": sorted(owned - self.owned)[:50],
                    "removed": sorted(self.owned - owned)[:50],
                    "watched": len(owned),
                },
            )
        self.owned = owned
        per = symbols_per_connection(self.settings.stream_max_subscriptions)
        self.slots = plan_connections(self.slots, owned, per)
        for index, slot_symbols in self.slots.items():
            name = f"c{index}"
            conn = self.connections.get(name) or self._open(name)
            wanted = {c for s in slot_symbols for c in channels.symbol_channels(s)}
            if wanted != conn.wanted:
                conn.set_channels(wanted)
        for name in [n for n in self.connections if n != MINI]:
            if int(name[1:]) not in self.slots:
                await self._close(name)

    # ---- frames ------------------------------------------------------------------------------

    def _on_event(self, name: str, n: int) -> None:
        self.writer.count(name, n)

    def _on_frame(self, conn: Connection, frame: Frame, received: int) -> None:
        body = frame.body
        sent = frame.send_time or received
        if isinstance(body, MiniTickers):
            kind = "miniTickers"
            states = [MiniTickerState.of(t, sent, received) for t in body.items if t.symbol]
            self.writer.mini_tickers(states, sent, received)
        elif isinstance(body, BookTicker | Deals | Kline):
            kind = _SYMBOL_KINDS[type(body)]
            symbol = frame.symbol or channels.parse(frame.channel).symbol
            live = self.symbols.get(symbol or "")
            if live is not None:  # not a late frame of a symbol no longer watched
                self._on_symbol_frame(live, conn, body, sent, received)
        else:
            kind = "other"
        self.counts[kind] += 1
        self.writer.count(f"messages:{kind}")

    def _on_symbol_frame(
        self,
        live: SymbolLive,
        conn: Connection,
        body: BookTicker | Deals | Kline,
        sent: int,
        received: int,
    ) -> None:
        symbol = live.symbol
        before = live.last_price_ms
        if isinstance(body, BookTicker):
            self.writer.book(BookState.of(symbol, body, sent, received))
            return
        if isinstance(body, Deals):
            deals = sorted((DealState.of(d) for d in body.deals), key=lambda d: d.time)
            points = live.on_deals(deals)
            self.writer.deals(symbol, deals)
            if points:
                self.writer.history(symbol, points)
        else:
            if body.interval != "Min1":
                return
            update = live.on_kline(KlineState.of(body, sent), conn.session)
            if update is None:
                return
            self.writer.kline(symbol, update.current, update.closed)
            if update.minute_closed is not None:
                trigger = self.rules.on_candle_closed(symbol, update.minute_closed)
                if trigger is not None:
                    self._fire(trigger)
        if live.last_price is not None and live.last_price_ms > before:
            for trigger in self.rules.on_price(symbol, live.last_price, live.last_price_ms):
                self._fire(trigger)

    # ---- triggers ----------------------------------------------------------------------------

    def _fire(self, trigger: Trigger) -> None:
        if self.sender is None:
            return
        key = (trigger.kind, trigger.symbol)
        if key in self._inflight or not self.cooldown.allow(key):
            return
        self._inflight.add(key)
        self._spawn(self._dispatch(trigger, key))

    async def _dispatch(self, trigger: Trigger, key: tuple[str, str]) -> None:
        assert self.sender is not None
        try:
            outcome = await self.gate.claim(trigger)
            if outcome == SENT:
                await self.writer.flush()  # the run reads the stream state as it is now
                loop = asyncio.get_running_loop()
                try:
                    await loop.run_in_executor(self._executor, self.sender.send, trigger)
                except Exception as exc:
                    outcome = "failed"
                    await self.gate.release(trigger)
                    log.error(
                        "cannot send the tick run; it will be tried again",
                        extra={"task_id": trigger.task_id, "error": f"{type(exc).__name__}: {exc}"},
                    )
                else:
                    log.info(
                        "tick run sent",
                        extra={
                            "task_id": trigger.task_id,
                            "kind": trigger.kind,
                            "symbol": trigger.symbol,
                            "reason": trigger.reason,
                        },
                    )
            else:
                log.debug(
                    "tick run not sent",
                    extra={"task_id": trigger.task_id, "outcome": outcome},
                )
            if outcome in (SENT, DUPLICATE) and trigger.kind == "move":
                self.rules.set_reference(trigger.symbol, trigger.price)
            self.trigger_counts[f"{trigger.kind}:{outcome}"] += 1
            self.writer.count(f"triggers:{trigger.kind}:{outcome}")
        except (RedisError, OSError) as exc:
            log.error(
                "cannot check the tick trigger in Redis",
                extra={"task_id": trigger.task_id, "error": f"{type(exc).__name__}: {exc}"},
            )
        finally:
            self._inflight.discard(key)

    # ---- status and flushing -----------------------------------------------------------------

    async def _flush_loop(self) -> None:
        interval = self.settings.stream_flush_interval_ms / 1000
        next_status = next_prune = 0.0
        while True:
            now = time.monotonic()
            try:
                if now >= next_status:
                    next_status = now + STATUS_EVERY_SEC
                    self._write_status(now)
                if now >= next_prune:
                    next_prune = now + PRUNE_STATUS_EVERY_SEC
                    await self._prune_status()
                await self.writer.flush()
            except Exception:  # a bug must not stop the state from being written
                log.exception("writing the stream state failed")
            await asyncio.sleep(interval)

    def rates(self, now: float) -> dict[str, float]:
        """Messages per second by kind over the last RATE_WINDOW_SEC."""
        self._rate_samples.append((now, Counter(self.counts)))
        while now - self._rate_samples[0][0] > RATE_WINDOW_SEC:
            self._rate_samples.popleft()
        first_at, first = self._rate_samples[0]
        span = now - first_at
        if span <= 0:
            return {}
        return {k: round((v - first.get(k, 0)) / span, 2) for k, v in self.counts.items()}

    def _write_status(self, now: float) -> None:
        now_ms = _now_ms()
        common = {"instance": self.instance, "shard": str(self.shard), "updated_ms": now_ms}
        for name, conn in self.connections.items():
            self.writer.status(
                keys.connection_field(self.instance, name), {**conn.status(), **common}
            )
        self.writer.status(
            keys.instance_field(self.instance),
            {
                **common,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "url": self.url,
                "started_ms": self.started_ms,
                "watched": len(self.owned),
                "connections": len(self.connections),
                "connected": sum(1 for c in self.connections.values() if c.connected),
                "rates": self.rates(now),
                "triggers": dict(self.trigger_counts),
                "failed_flushes": self.writer.failed_flushes,
            },
        )

    async def _prune_status(self) -> None:
        """Forget the status of streamers that died without saying goodbye."""
        try:
            entries = await self.redis.hgetall(keys.status(self.prefix))
        except (RedisError, OSError):
            return
        now_ms = _now_ms()
        dead = []
        for field, value in entries.items():
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                updated = int(json.loads(value).get("updated_ms", 0))
                if now_ms - updated > 6 * keys.STATUS_STALE_MS:
                    dead.append(field)
        if dead:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.hdel(keys.status(self.prefix), *dead)
