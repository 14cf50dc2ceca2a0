"""One WebSocket connection to MEXC's spot streams, kept alive for as long as it is wanted.

    conn = Connection("0/1:c0", url, settings, on_frame)
    conn.set_channels({...})         # any time: it (un)subscribes to match, up to 30
    task = asyncio.create_task(conn.run())
    ...
    await conn.stop()

What it does, and why:

* Reconnects after any failure (refused handshake, reset, close by the server, a stall) with
  exponential backoff and full jitter (app/stream/backoff.py), and subscribes again to every
  wanted channel. A connection that stayed up 30 s starts again from the shortest delay.
* Sends {"method":"PING"} every STREAM_PING_INTERVAL_SEC: MEXC closes a connection after 60 s
  without data flow (a subscription with nothing to say) and 30 s without a valid
  subscription. websockets' own keepalive pings are off: MEXC's keepalive is the JSON PING.
* Gives up on a connection that is silent for ping interval + 10 s (not even a PONG: the
  TCP path is dead) or that brings no data frame for STREAM_STALL_TIMEOUT_SEC while
  subscribed (a stalled feed), and reconnects.
* Rotates: reconnects after STREAM_ROTATE_AFTER_SEC (+ up to 2 % jitter so connections
  opened together do not rotate together), before MEXC's 24 h limit cuts it.
* Decodes each binary frame with app/exchange/proto; a frame that does not decode is counted
  and logged with the codec's reason (at most one log line per connection every 10 s, with
  how many were skipped) and skipped: one bad frame never costs the connection. An error in
  the frame handler is logged the same way and skipped.
* A refused subscription is logged with MEXC's message, counted, and asked for again after
  REFUSED_RETRY_SEC (an unknown or delisted symbol does not spin).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from app.exchange.proto import Frame, FrameDecodeError, decode
from app.stream import channels
from app.stream.backoff import STABLE_AFTER_SEC, backoff_delay
from app.stream.config import StreamSettings

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024 * 1024  # miniTickers of ~2,500 symbols are ~330 KB
PONG_GRACE_SEC = 10.0
ANSWER_TIMEOUT_SEC = 10.0  # a (un)subscription unanswered this long is sent again
REFUSED_RETRY_SEC = 300.0
LOG_EVERY_SEC = 10.0
KEEPER_TICK_SEC = 0.25

FrameHandler = Callable[["Connection", Frame, int], None]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Connection:
    def __init__(
        self,
        name: str,
        url: str,
        settings: StreamSettings,
        on_frame: FrameHandler,
        *,
        on_event: Callable[[str, int], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.settings = settings
        self.on_frame = on_frame
        self.on_event = on_event or (lambda name, n: None)
        self.rng = rng or random.Random()
        self.wanted: frozenset[str] = frozenset()
        self.subscribed: set[str] = set()
        self.pending: dict[str, float] = {}  # channel -> when the subscription was sent
        self.refused: dict[str, float] = {}  # channel -> when MEXC refused it
        self.connected = False
        self.session = 0  # increments with every connection opened
        self.connected_since_ms: int | None = None
        self.last_message_ms: int | None = None
        self.last_data_ms: int | None = None
        self.lag_ms: int | None = None
        self.lag_avg_ms: float | None = None
        self.reconnects = 0
        self.rotations = 0
        self.decode_errors = 0
        self.handler_errors = 0
        self.last_error: str | None = None
        self.last_reconnect_sec: float | None = None  # from losing to re-subscribing
        self._ws: ClientConnection | None = None
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        self._lost_at: float | None = None
        self._close_reason: str | None = None
        self._last_log: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    # ---- what the streamer calls -------------------------------------------------------------

    def set_channels(self, wanted: set[str] | frozenset[str]) -> None:
        if len(wanted) > self.settings.stream_max_subscriptions:
            raise ValueError(
                f"{len(wanted)} channels on one connection; at most "
                f"{self.settings.stream_max_subscriptions}"
            )
        self.wanted = frozenset(wanted)
        self._changed.set()

    async def stop(self) -> None:
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(1000, "streamer stopping"), 3)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "connected": self.connected,
            "subscriptions": len(self.subscribed),
            "wanted": len(self.wanted),
            "pending": len(self.pending),
            "refused": sorted(self.refused),
            "session": self.session,
            "connected_since_ms": self.connected_since_ms,
            "last_message_ms": self.last_message_ms,
            "last_data_ms": self.last_data_ms,
            "lag_ms": self.lag_ms,
            "lag_avg_ms": None if self.lag_avg_ms is None else round(self.lag_avg_ms, 1),
            "reconnects": self.reconnects,
            "rotations": self.rotations,
            "decode_errors": self.decode_errors,
            "last_error": self.last_error,
            "last_reconnect_sec": self.last_reconnect_sec,
        }

    # ---- the connection's life ---------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stream, reconnect, until stop()."""
        attempt = 0
        while not self._stopping.is_set():
            if not self._subscribable():
                # Every wanted channel was refused: MEXC would close a connection without a
                # valid subscription after 30 s, so open none until one is due again.
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 5.0)
                continue
            opened = time.monotonic()
            reason = await self._connect_once()
            if self._stopping.is_set():
                break
            up_for = time.monotonic() - opened
            if up_for >= STABLE_AFTER_SEC:
                attempt = 0
            delay = (
                0.0
                if reason == "rotation"
                else backoff_delay(
                    attempt,
                    self.settings.stream_backoff_base_sec,
                    self.settings.stream_backoff_max_sec,
                    self.rng.uniform,
                )
            )
            self._lost_at = self._lost_at or time.monotonic()
            if reason == "rotation":  # planned: not a failure, no backoff
                attempt = 0
                self.rotations += 1
                self.on_event("rotations", 1)
                log.info(
                    "stream connection rotated",
                    extra={"connection": self.name, "up_sec": round(up_for, 1)},
                )
            else:
                attempt += 1
                self.reconnects += 1
                self.on_event("reconnects", 1)
                log.warning(
                    "stream connection lost; reconnecting",
                    extra={
                        "connection": self.name,
                        "reason": reason,
                        "delay_sec": round(delay, 3),
                        "attempt": attempt,
                        "up_sec": round(up_for, 1),
                    },
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        self.connected = False

    async def _connect_once(self) -> str:
        """One connection from handshake to close; returns why it ended."""
        try:
            async with connect(
                self.url,
                ping_interval=None,
                open_timeout=10,
                close_timeout=2,
                max_size=MAX_FRAME_BYTES,
                user_agent_header=None,
            ) as ws:
                self._opened(ws)
                try:
                    return await self._session(ws)
                finally:
                    self._closed()
        except ConnectionClosed as exc:
            reason = exc.rcvd.reason if exc.rcvd is not None else ""
            code = exc.rcvd.code if exc.rcvd is not None else None
            text = f"closed by the server ({code} {reason})" if code else "connection cut"
            self.last_error = text
            return text
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            text = f"{type(exc).__name__}: {exc}"
            self.last_error = text
            return text
        except Exception as exc:  # a bug must cost one connection attempt, not the streamer
            log.exception("stream connection failed", extra={"connection": self.name})
            text = f"{type(exc).__name__}: {exc}"
            self.last_error = text
            return text

    def _opened(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.session += 1
        self.connected = True
        self.connected_since_ms = self.last_message_ms = _now_ms()
        self.last_data_ms = None
        self.subscribed.clear()
        self.pending.clear()
        self._changed.set()

    def _closed(self) -> None:
        self._ws = None
        self.connected = False
        self.subscribed.clear()
        self.pending.clear()

    async def _session(self, ws: ClientConnection) -> str:
        self._close_reason = None
        keeper = asyncio.create_task(self._keep(ws), name=f"stream-keeper:{self.name}")
        try:
            async for message in ws:
                self._on_message(message)
        except ConnectionClosed:
            if self._close_reason is None:
                raise
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await keeper
        if self._close_reason is not None:
            return self._close_reason
        return "stopping" if self._stopping.is_set() else "closed by the server"

    async def _keep(self, ws: ClientConnection) -> None:
        """Pings, subscriptions, liveness and rotation of one open connection."""
        try:
            await self._keep_alive(ws)
        except ConnectionClosed:
            return
        except Exception:  # a bug here must not leave a connection without keepalive
            log.exception("stream connection keeper failed", extra={"connection": self.name})
            self._close_reason = "keeper failed"
            ws.transport.abort()

    async def _keep_alive(self, ws: ClientConnection) -> None:
        s = self.settings
        opened = time.monotonic()
        rotate_at = opened + s.stream_rotate_after_sec * (1 + 0.02 * self.rng.random())
        next_ping = opened + s.stream_ping_interval_sec
        while True:
            now = time.monotonic()
            if self._changed.is_set() or self._due_again(now):
                self._changed.clear()
                await self._sync(ws)
            if now >= next_ping:
                next_ping = now + s.stream_ping_interval_sec
                await ws.send('{"method":"PING"}')
            reason = self._why_close(now, opened, rotate_at)
            if reason is not None:
                await self._close(ws, reason)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), KEEPER_TICK_SEC)

    def _why_close(self, now: float, opened: float, rotate_at: float) -> str | None:
        s = self.settings
        now_ms = _now_ms()
        if now >= rotate_at:
            return "rotation"
        silent = (now_ms - (self.last_message_ms or now_ms)) / 1000
        if silent > s.stream_ping_interval_sec + PONG_GRACE_SEC:
            return f"silent for {silent:.0f} s (no answer to PING)"
        if self.subscribed:
            since = self.last_data_ms or self.connected_since_ms or now_ms
            quiet = (now_ms - since) / 1000
            if quiet > s.stream_stall_timeout_sec and now - opened > s.stream_stall_timeout_sec:
                return f"stalled: no data frame for {quiet:.0f} s"
        return None

    async def _close(self, ws: ClientConnection, reason: str) -> None:
        """Close for a reason of ours; the reader then ends and run() reconnects."""
        self._close_reason = reason
        self.last_error = None if reason == "rotation" else reason
        with contextlib.suppress(Exception):
            await ws.close(1000, reason[:100])
        ws.transport.abort()  # a dead TCP path: close() gave up after close_timeout
        await asyncio.Future()  # the reader ends and cancels this keeper

    def _subscribable(self) -> bool:
        now = time.monotonic()
        return any(
            now - self.refused.get(name, -REFUSED_RETRY_SEC - 1) > REFUSED_RETRY_SEC
            for name in self.wanted
        )

    def _due_again(self, now: float) -> bool:
        """A subscription unanswered too long, or a refused one due to be asked again."""
        return any(now - sent > ANSWER_TIMEOUT_SEC for sent in self.pending.values()) or any(
            now - when > REFUSED_RETRY_SEC for when in self.refused.values()
        )

    async def _sync(self, ws: ClientConnection) -> None:
        """(Un)subscribe so that subscribed + pending == wanted (minus recently refused)."""
        now = time.monotonic()
        for name, sent in list(self.pending.items()):
            if now - sent > ANSWER_TIMEOUT_SEC:
                log.warning(
                    "subscription unanswered; asking again",
                    extra={"connection": self.name, "channel": name},
                )
                del self.pending[name]
        for name, when in list(self.refused.items()):
            if now - when > REFUSED_RETRY_SEC or name not in self.wanted:
                del self.refused[name]
        drop = sorted((self.subscribed | set(self.pending)) - self.wanted)
        add = sorted(self.wanted - self.subscribed - set(self.pending) - set(self.refused))
        if drop:
            await ws.send(json.dumps({"method": "UNSUBSCRIPTION", "params": drop}))
            self.subscribed.difference_update(drop)
            for name in drop:
                self.pending.pop(name, None)
        if add:
            await ws.send(json.dumps({"method": "SUBSCRIPTION", "params": add}))
            self.pending.update(dict.fromkeys(add, now))

    # ---- what comes in --------------------------------------------------------------------------

    def _on_message(self, message: str | bytes) -> None:
        received = _now_ms()
        self.last_message_ms = received
        if isinstance(message, str):
            self.on_event("messages:control", 1)
            self._on_text(message)
            return
        try:
            frame = decode(message)
        except FrameDecodeError as exc:
            self.decode_errors += 1
            self.on_event("decode_errors", 1)
            self._log_limited(
                "decode",
                "stream frame refused: it does not decode",
                {"reason": str(exc), "bytes": len(message)},
            )
            return
        self.last_data_ms = received
        if frame.send_time:
            lag = received - frame.send_time
            self.lag_ms = lag
            self.lag_avg_ms = lag if self.lag_avg_ms is None else 0.9 * self.lag_avg_ms + 0.1 * lag
        if self._lost_at is not None:
            self.last_reconnect_sec = round(time.monotonic() - self._lost_at, 3)
            self._lost_at = None
            log.info(
                "stream connection back",
                extra={"connection": self.name, "reconnect_sec": self.last_reconnect_sec},
            )
        try:
            self.on_frame(self, frame, received)
        except Exception as exc:  # a bug in one frame's handling must not cost the connection
            self.handler_errors += 1
            self.on_event("handler_errors", 1)
            self._log_limited(
                "handler",
                "stream frame skipped: handling it failed",
                {"reason": f"{type(exc).__name__}: {exc}", "channel": frame.channel},
                exc_info=True,
            )

    def _on_text(self, message: str) -> None:
        try:
            data = json.loads(message)
        except ValueError:
            self._log_limited("text", "stream text frame is not JSON", {"text": message[:200]})
            return
        if not isinstance(data, dict):
            return
        answer = channels.parse_answer(data)
        if answer.pong:
            return
        now = time.monotonic()
        for name in answer.accepted:
            if self.pending.pop(name, None) is not None:
                self.subscribed.add(name)
        for name in answer.refused:
            if self.pending.pop(name, None) is not None or name in self.wanted:
                self.refused[name] = now
                self.on_event("refused_subscriptions", 1)
                log.warning(
                    "subscription refused by MEXC",
                    extra={"connection": self.name, "channel": name, "mexc_msg": answer.message},
                )
        if answer.code != 0 or (not answer.accepted and not answer.refused):
            log.warning(
                "unexpected answer from MEXC",
                extra={"connection": self.name, "answer": message[:500]},
            )

    def _log_limited(
        self, kind: str, message: str, extra: dict[str, Any], exc_info: bool = False
    ) -> None:
        now = time.monotonic()
        if now - self._last_log.get(kind, -LOG_EVERY_SEC) < LOG_EVERY_SEC:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last_log[kind] = now
        skipped = self._suppressed.pop(kind, 0)
        log.warning(
            message,
            extra={"connection": self.name, **extra, "similar_skipped": skipped},
            exc_info=exc_info,
        )
