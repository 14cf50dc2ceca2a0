"""The simulator's WebSocket side: MEXC's public spot streams at ws://HOST:PORT/ws.

An asyncio server (the `websockets` library) on a background thread. Text frames in, as on
MEXC:

    {"method":"SUBSCRIPTION","params":["<channel>", ...]}
        -> {"id":0,"code":0,"msg":"<channel>,<channel>"}                 all accepted
        -> {"id":0,"code":0,
            "msg":"Not Subscribed successfully! [<channel>,...].  Reason: Blocked! "}
           (the colon is a full-width U+FF1A, as MEXC sends it) for an unknown channel or
           symbol, or beyond max_subscriptions (30) a connection (a request with both gets
           "Subscribed successful! [...]. Not Subscribed successfully! [...].  Reason: Blocked! ")
    {"method":"UNSUBSCRIPTION","params":[...]}  -> {"id":0,"code":0,"msg":"<channel>,..."}
    {"method":"PING"}                           -> {"id":0,"code":0,"msg":"PONG"}

A request's integer "id" is echoed; anything else (not JSON, unknown method) gets no answer.
Data frames are binary PushDataV3ApiWrapper messages (app/exchange/proto), built by
ws_channels.py from the same market as the REST answers, stamped createTime = sendTime = the
market moment they show.

Limits (WsSettings, all configurable): a connection is closed (code 1000, the reason says
which) after no_subscription_timeout (30 s) without a valid subscription, after
idle_timeout (60 s) with neither a data frame nor a client message, and after max_lifetime
(24 h). Outgoing frames wait in a bounded per-connection buffer (send_buffer_bytes); a client
that does not read fills it and is closed with 1008 "slow consumer".

Faults (faults.py; POST /_sim/faults or SimulatorServer(faults=[...]), path "/ws"):
ws_drop cuts connections without a close frame, ws_stall withholds data frames (for `delay`
seconds, or until cleared), ws_malformed replaces data frames by bytes that are no wrapper,
ws_slow_consumer stops draining a connection's buffer so the slow-consumer close happens.
A `stale` fault freezes the streams' market clock like the REST one's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from app.exchange.proto.codec import Frame, MiniTickers, encode
from app.exchange.simulator import book, ws_channels
from app.exchange.simulator.faults import WS_MODES, FaultInjector
from app.exchange.simulator.market import SimulatedMarket
from app.exchange.simulator.ws_channels import Channel

logger = logging.getLogger(__name__)
# websockets logs "server listening" and every handshake at INFO: keep it to warnings
_library_logger = logging.getLogger(__name__ + ".websockets")
_library_logger.setLevel(logging.WARNING)

WS_PATH = "/ws"
BLOCKED = "Not Subscribed successfully! [{}].  Reason\uff1a Blocked! "  # a full-width colon
MALFORMED_FRAME = b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"  # an 11-byte varint
_DROP = frozenset({"ws_drop"})
_STALL = frozenset({"ws_stall"})
_MALFORMED = frozenset({"ws_malformed"})
_SLOW = frozenset({"ws_slow_consumer"})
_STALE = frozenset({"stale"})


@dataclass(frozen=True, slots=True)
class WsSettings:
    """Limits and cadences of the WebSocket side (MEXC's values by default)."""

    max_subscriptions: int = 30
    no_subscription_timeout: float = 30.0
    idle_timeout: float = 60.0
    max_lifetime: float = 86_400.0
    send_buffer_bytes: int = 4 * 1024 * 1024
    mini_tickers_interval: float = 3.0
    kline_interval: float = 1.0
    limit_depth_interval: float = 0.1


@dataclass(eq=False)
class _Subscription:
    channel: Channel
    period: float
    due: float
    cursor_ms: int  # deals: last trade time sent; depth: market time of the last state sent
    version: int = 0  # depth: the last toVersion sent
    last: Any = None  # limit depth: the last body sent; depth: the best prices' range
    generation: int = 0  # depth: the symbol's scenario generation at the last push
    sent_at_cursor: frozenset[str] = frozenset()  # deals: ids sent with time == cursor_ms


@dataclass(eq=False)
class _Connection:
    ws: ServerConnection
    opened: float
    queue: asyncio.Queue[bytes | str] = field(default_factory=asyncio.Queue)
    queued_bytes: int = 0
    subscriptions: dict[str, _Subscription] = field(default_factory=dict)
    unsubscribed_since: float = 0.0
    last_flow: float = 0.0
    reading: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: a slow consumer
    closing: bool = False


class WsServer:
    """MEXC's spot streams for one SimulatedMarket, on its own thread and event loop."""

    def __init__(
        self,
        market: SimulatedMarket,
        faults: FaultInjector,
        clock: Callable[[], int],
        host: str = "127.0.0.1",
        port: int = 0,
        settings: WsSettings | None = None,
    ) -> None:
        self.market = market
        self.faults = faults
        self.clock = clock
        self.host = host
        self.port = port
        self.settings = settings or WsSettings()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[None] | None = None
        self._server: Server | None = None
        self._connections: set[_Connection] = set()
        self._shared: dict[tuple[Any, ...], bytes] = {}
        self._stall_started: dict[int, float] = {}

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{WS_PATH}"

    @property
    def connections(self) -> int:
        return len(self._connections)

    def start(self) -> WsServer:
        ready = threading.Event()
        errors: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, errors), name=f"mexc-sim-ws:{self.port}", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        if errors:
            self._thread.join(5)
            raise errors[0]
        return self

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None

    def _run(self, ready: threading.Event, errors: list[BaseException]) -> None:
        try:
            asyncio.run(self._main(ready))
        except BaseException as exc:  # reported to start() if it happens before ready
            errors.append(exc)
            ready.set()

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        async with serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._check_path,
            ping_interval=None,  # MEXC keeps connections alive with the JSON PING
            compression=None,
            close_timeout=2,
            max_size=2**16,
            logger=_library_logger,
        ) as server:
            self._server = server
            self.port = server.sockets[0].getsockname()[1]
            threading.current_thread().name = f"mexc-sim-ws:{self.port}"
            ready.set()
            await self._stop
            for conn in list(self._connections):
                conn.reading.set()
        self._server = None

    @staticmethod
    def _check_path(connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] != WS_PATH:
            return Response(404, "Not Found", Headers(), b"Not Found\n")
        return None

    # ---- a connection ----------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        now = time.monotonic()
        conn = _Connection(ws, now, unsubscribed_since=now, last_flow=now)
        conn.reading.set()
        self._connections.add(conn)
        tasks = [asyncio.create_task(self._writer(conn)), asyncio.create_task(self._pump(conn))]
        try:
            async for message in ws:
                conn.last_flow = time.monotonic()
                self._on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
            self._connections.discard(conn)

    def _send(self, conn: _Connection, data: bytes | str) -> None:
        if conn.closing:
            return
        size = len(data)
        if conn.queued_bytes + size > self.settings.send_buffer_bytes:
            self._close(conn, 1008, "slow consumer: send buffer full")
            return
        conn.queued_bytes += size
        conn.queue.put_nowait(data)

    async def _writer(self, conn: _Connection) -> None:
        try:
            while True:
                data = await conn.queue.get()
                await conn.reading.wait()
                await conn.ws.send(data)
                conn.queued_bytes -= len(data)
        except ConnectionClosed:
            pass

    def _close(self, conn: _Connection, code: int, reason: str) -> None:
        if conn.closing:
            return
        conn.closing = True
        logger.debug("closing WebSocket connection: %s", reason)
        asyncio.get_running_loop().create_task(conn.ws.close(code, reason))

    def _on_message(self, conn: _Connection, message: str | bytes) -> None:
        if isinstance(message, bytes):
            return
        try:
            request = json.loads(message)
        except ValueError:
            return
        if not isinstance(request, dict):
            return
        raw_id = request.get("id", 0)
        reply_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else 0
        method = request.get("method")
        params = request.get("params")
        if method == "PING":
            msg = "PONG"
        elif method in ("SUBSCRIPTION", "UNSUBSCRIPTION") and isinstance(params, list):
            names = [p for p in params if isinstance(p, str)]
            if method == "SUBSCRIPTION":
                msg = self._subscribe(conn, names)
            else:
                for name in names:
                    conn.subscriptions.pop(name, None)
                msg = ",".join(names)
            if not conn.subscriptions:
                conn.unsubscribed_since = min(conn.unsubscribed_since, time.monotonic())
            else:
                conn.unsubscribed_since = float("inf")
        else:
            return
        self._send(conn, json.dumps({"id": reply_id, "code": 0, "msg": msg}, ensure_ascii=False))

    def _subscribe(self, conn: _Connection, names: list[str]) -> str:
        accepted, refused = [], []
        now_ms = self._market_now()
        for name in names:
            if name in conn.subscriptions:
                accepted.append(name)
                continue
            channel = ws_channels.parse_channel(name, self.market)
            if channel is None or len(conn.subscriptions) >= self.settings.max_subscriptions:
                refused.append(name)
                continue
            conn.subscriptions[name] = self._new_subscription(channel, now_ms)
            accepted.append(name)
        if not refused:
            return ",".join(accepted)
        blocked = BLOCKED.format(",".join(refused))
        return f"Subscribed successful! [{','.join(accepted)}]. {blocked}" if accepted else blocked

    def _new_subscription(self, channel: Channel, now_ms: int) -> _Subscription:
        s = self.settings
        periods = {
            "miniTickers": s.mini_tickers_interval,
            "miniTicker": s.mini_tickers_interval,
            "kline": s.kline_interval,
            "limitDepth": s.limit_depth_interval,
        }
        period = periods.get(channel.kind, channel.period_ms / 1000.0)
        sub = _Subscription(channel, period, time.monotonic(), now_ms)
        if channel.kind == "depth":
            assert channel.symbol is not None
            series = self.market.series(channel.symbol)
            sub.version, sub.generation = book.version(series, now_ms), series.generation
        return sub

    # ---- pushing ---------------------------------------------------------------------------

    def _market_now(self) -> int:
        stale = self.faults.active(WS_PATH, _STALE)
        if stale is not None and stale.frozen_at_ms is not None:
            return stale.frozen_at_ms
        return self.clock()

    def _stalled(self) -> bool:
        fault = self.faults.active(WS_PATH, _STALL)
        if fault is None:
            return False
        started = self._stall_started.setdefault(fault.id, time.monotonic())
        if fault.delay and time.monotonic() - started >= fault.delay:
            self.faults.remove(fault.id)
            return False
        return True

    def _expired(self, conn: _Connection, now: float) -> str | None:
        s = self.settings
        if now - conn.opened >= s.max_lifetime:
            return "connection lifetime exceeded"
        if not conn.subscriptions and now - conn.unsubscribed_since >= s.no_subscription_timeout:
            return "no valid subscription"
        if conn.subscriptions and now - conn.last_flow >= s.idle_timeout:
            return "no data flow"
        return None

    async def _pump(self, conn: _Connection) -> None:
        while not conn.closing:
            now = time.monotonic()
            reason = self._expired(conn, now)
            if reason is not None:
                self._close(conn, 1000, reason)
                return
            if self.faults.take(WS_PATH, _DROP) is not None:
                conn.closing = True
                conn.ws.transport.abort()
                return
            if conn.reading.is_set() and self.faults.take(WS_PATH, _SLOW) is not None:
                conn.reading.clear()
            due = [sub for sub in conn.subscriptions.values() if sub.due <= now]
            if due and not self._stalled():
                market_now = self._market_now()
                for sub in due:
                    self._push(conn, sub, market_now)
            for sub in due:
                sub.due = max(sub.due + sub.period, now)
            wake = min((sub.due for sub in conn.subscriptions.values()), default=now + 0.1)
            await asyncio.sleep(min(max(wake - time.monotonic(), 0.002), 0.1))

    def _push(self, conn: _Connection, sub: _Subscription, now_ms: int) -> None:
        channel = sub.channel
        body: Any = None
        if channel.kind == "miniTickers":
            data = self._mini_tickers(channel, now_ms, sub.period)
            self._send_data(conn, data)
            return
        assert channel.symbol is not None
        if channel.kind == "miniTicker":
            body = ws_channels.mini_ticker(
                self.market, channel.symbol, now_ms, channel.tz_offset_ms
            )
        elif channel.kind == "bookTicker":
            body = ws_channels.book_ticker(self.market, channel.symbol, now_ms)
        elif channel.kind == "deals":
            body = ws_channels.deals(
                self.market, channel, sub.cursor_ms, now_ms, sub.sent_at_cursor
            )
            if body is not None:
                sub.cursor_ms = body.deals[-1].time
                sub.sent_at_cursor = frozenset(
                    d.trade_id for d in body.deals if d.time == sub.cursor_ms
                ) | (sub.sent_at_cursor if body.deals[0].time == sub.cursor_ms else frozenset())
        elif channel.kind == "depth":
            generation = self.market.series(channel.symbol).generation
            if generation != sub.generation:  # the past changed: make the client resync
                body, version = ws_channels.depth_gap(self.market, channel, now_ms, sub.version)
                sub.cursor_ms, sub.version, sub.generation, sub.last = (
                    now_ms,
                    version,
                    generation,
                    None,
                )
            elif now_ms > sub.cursor_ms:
                body, version, sub.last = ws_channels.aggre_depth(
                    self.market, channel, sub.cursor_ms, now_ms, sub.version + 1, sub.last
                )
                sub.cursor_ms = now_ms
                if body is not None:
                    sub.version = version
        elif channel.kind == "limitDepth":
            body = ws_channels.limit_depth(self.market, channel, now_ms)
            if (
                body is not None
                and sub.last is not None
                and body.asks == sub.last.asks
                and (body.bids == sub.last.bids)
            ):
                return
            sub.last = body
        else:
            body = ws_channels.kline(self.market, channel, now_ms)
        if body is None:
            return
        spec = self.market.spec(channel.symbol)
        frame = Frame(channel.name, body, channel.symbol, spec.symbol_id, now_ms, now_ms)
        self._send_data(conn, encode(frame))

    def _mini_tickers(self, channel: Channel, now_ms: int, period: float) -> bytes:
        """All symbols' mini tickers, computed once per period for every connection."""
        key = (channel.name, now_ms // max(1, int(period * 1000)))
        data = self._shared.get(key)
        if data is None:
            items = tuple(
                ws_channels.mini_ticker(self.market, s, now_ms, channel.tz_offset_ms)
                for s in self.market.symbols
            )
            data = encode(Frame(channel.name, MiniTickers(items), None, None, now_ms, now_ms))
            if len(self._shared) >= 8:
                self._shared.clear()
            self._shared[key] = data
        return data

    def _send_data(self, conn: _Connection, data: bytes) -> None:
        if self.faults.take(WS_PATH, _MALFORMED) is not None:
            data = MALFORMED_FRAME + data[:8]
        conn.last_flow = time.monotonic()
        self._send(conn, data)


__all__ = ["WS_MODES", "WsServer", "WsSettings"]
