"""The streamer against the simulator's WebSocket side, on the real Redis: what it stores
equals what MEXC's REST side says, connections stay within 30 subscriptions, it comes back
after a dropped connection, a stalled feed turns into "use REST", a bad frame is skipped."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis
from redis import asyncio as aioredis

from app.exchange.simulator import SimulatorServer, WsSettings
from app.stream import keys
from app.stream.config import StreamSettings
from app.stream.shards import Shard
from app.stream.state import (
    read_book_ticker,
    read_deals,
    read_klines,
    read_mini_tickers,
    read_price_history,
    read_universe,
    set_watched,
    stream_health,
    stream_metrics,
)
from app.stream.streamer import Streamer
from app.stream.triggers import Trigger
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration

SIM_WS = WsSettings(mini_tickers_interval=0.5)


# ---- helpers (also used by test_stream_triggers.py) --------------------------------------------


class Clock:
    """Market time in ms: from `start`, running `speed` times the wall clock (0: frozen)."""

    def __init__(self, start: int | None = None, speed: float = 1.0) -> None:
        self.start = time.time_ns() // 1_000_000 if start is None else start
        self.speed = speed
        self._t0 = time.monotonic()

    def __call__(self) -> int:
        return self.start + int((time.monotonic() - self._t0) * 1000 * self.speed)


def stream_settings(prefix: str, **overrides: Any) -> StreamSettings:
    """Test-sized settings: quick reconnects and short TTLs."""
    values: dict[str, Any] = {
        "redis_key_prefix": prefix,
        "stream_backoff_base_sec": 0.2,
        "stream_backoff_max_sec": 2.0,
        "stream_symbol_ttl_sec": 3,
        "stream_watch_poll_sec": 0.2,
        "stream_flush_interval_ms": 100,
        "stream_triggers": "",
        **overrides,
    }
    return StreamSettings(**values)


class StreamerThread:
    """A Streamer on its own event loop in a background thread, like `cdb stream` runs it."""

    def __init__(
        self,
        settings: StreamSettings,
        url: str,
        shard: Shard | None = None,
        sender: Any = None,
    ) -> None:
        self.settings, self.url, self.sender = settings, url, sender
        self.shard = shard or Shard(0, 1)
        self.streamer: Streamer | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        client = aioredis.Redis.from_url(REDIS_URL)
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self.streamer = Streamer(
            self.settings, client, shard=self.shard, url=self.url, sender=self.sender
        )
        self._ready.set()
        try:
            await self.streamer.run(self._stop)
        finally:
            await client.aclose()

    def __enter__(self) -> StreamerThread:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)
        assert not self._thread.is_alive(), "the streamer did not stop"


class Recorder:
    """A trigger sender that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[Trigger] = []

    def send(self, trigger: Trigger) -> None:
        self.sent.append(trigger)


def wait_until(check: Callable[[], Any], timeout: float = 15.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        time.sleep(every)


def connection_status(r: redis.Redis, prefix: str) -> list[dict[str, Any]]:
    raw = r.hgetall(keys.status(prefix))
    return [json.loads(v) for k, v in raw.items() if k.startswith(b"conn|")]


def fault(sim: SimulatorServer, spec: str) -> None:
    httpx.post(f"{sim.url}/_sim/faults", json={"spec": spec}).raise_for_status()


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_prefix: str, r: redis.Redis) -> Iterator[str]:
    """A key prefix of this test alone; its keys are removed afterwards."""
    mine = f"{redis_prefix}{uuid.uuid4().hex[:8]}:"
    yield mine
    found = list(r.scan_iter(match=f"{mine}*", count=1000))
    if found:
        r.delete(*found)


@pytest.fixture(scope="module")
def live_sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(n_symbols=40, seed=11, ws_settings=SIM_WS) as sim:
        yield sim


@pytest.fixture
def sim(live_sim: SimulatorServer) -> Iterator[SimulatorServer]:
    httpx.post(f"{live_sim.url}/_sim/reset").raise_for_status()
    yield live_sim
    httpx.post(f"{live_sim.url}/_sim/reset").raise_for_status()


def fully_subscribed(r: redis.Redis, prefix: str, channels: int) -> list[dict[str, Any]] | None:
    status = connection_status(r, prefix)
    connected = status and all(c["connected"] for c in status)
    if connected and sum(c["subscriptions"] for c in status) == channels:
        return status
    return None


# ---- state equals REST ---------------------------------------------------------------------------


def test_stored_state_is_what_rest_says_at_the_same_moment(r, prefix) -> None:
    # Market time frozen at now: REST and the streams show the very same moment.
    clock = Clock(speed=0)
    with SimulatorServer(n_symbols=40, seed=11, clock=clock, ws_settings=SIM_WS) as sim:
        symbols = sim.market.symbols[:8]
        set_watched(r, prefix, symbols)
        with StreamerThread(stream_settings(prefix), sim.ws_url):
            wait_until(
                lambda: (
                    read_universe(r, prefix, 30)
                    and all(
                        read_book_ticker(r, prefix, s) and read_klines(r, prefix, s).current
                        for s in symbols
                    )
                )
            )
            got = read_mini_tickers(r, prefix, 30)
            universe = read_universe(r, prefix, 30)
        tickers = httpx.get(f"{sim.url}/api/v3/ticker/24hr").json()
        books = httpx.get(f"{sim.url}/api/v3/ticker/bookTicker").json()
        klines = {
            s: httpx.get(
                f"{sim.url}/api/v3/klines", params={"symbol": s, "interval": "1m", "limit": 1}
            ).json()[0]
            for s in symbols
        }

    assert got is not None and universe is not None
    assert int(universe.data_time.timestamp() * 1000) == clock.start  # MEXC's sendTime
    assert 0 <= universe.age < 30
    priced = {t["symbol"]: t for t in tickers if t["lastPrice"]}
    assert universe.prices.keys() == priced.keys()
    for symbol, rest in priced.items():
        mini = got.tickers[symbol]
        assert universe.prices[symbol] == Decimal(rest["lastPrice"])
        assert (mini.high, mini.low) == (Decimal(rest["highPrice"]), Decimal(rest["lowPrice"]))
        assert mini.volume == Decimal(rest["quoteVolume"])
        assert mini.quantity == Decimal(rest["volume"])
    books_by = {b["symbol"]: b for b in books}
    for symbol in symbols:
        book = read_book_ticker(r, prefix, symbol)
        rest = books_by[symbol]
        assert book is not None and book.send_time == clock.start
        assert (book.bid, book.bid_qty, book.ask, book.ask_qty) == tuple(
            Decimal(rest[f]) for f in ("bidPrice", "bidQty", "askPrice", "askQty")
        )
        assert book.bid <= universe.prices[symbol] <= book.ask  # the last trade's book
        kline = read_klines(r, prefix, symbol).current
        row = klines[symbol]
        assert row[0] == kline.open_time and row[6] == kline.close_time
        assert [Decimal(v) for v in (*row[1:6], row[7])] == [
            kline.open,
            kline.high,
            kline.low,
            kline.close,
            kline.volume,
            kline.quote_volume,
        ]


def test_closed_candles_deals_and_the_candle_trigger_follow_the_market(r, prefix) -> None:
    # Twenty market minutes a wall minute: candles close every 3 s.
    clock = Clock(speed=20)
    recorder = Recorder()
    settings = stream_settings(prefix, stream_triggers="candle", stream_trigger_min_gap_sec=0)
    with SimulatorServer(n_symbols=40, seed=11, clock=clock, ws_settings=SIM_WS) as sim:
        symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
        set_watched(r, prefix, symbols)
        with StreamerThread(settings, sim.ws_url, sender=recorder):
            wait_until(lambda: all(len(read_klines(r, prefix, s).closed) >= 2 for s in symbols), 20)
        trades = {
            s: httpx.get(f"{sim.url}/api/v3/trades", params={"symbol": s, "limit": 1000}).json()
            for s in symbols
        }
        closed = {s: read_klines(r, prefix, s).closed for s in symbols}
        rows = {
            (s, k.open_time): httpx.get(
                f"{sim.url}/api/v3/klines",
                params={"symbol": s, "interval": "1m", "startTime": k.open_time, "limit": 1},
            ).json()[0]
            for s in symbols
            for k in closed[s]
        }

    for symbol in symbols:
        for k in closed[symbol]:
            assert k.closed and k.complete
            row = rows[(symbol, k.open_time)]
            # The last frame of the minute, completed with the deals after it: exactly REST's.
            assert [Decimal(v) for v in (*row[1:6], row[7])] == [
                k.open,
                k.high,
                k.low,
                k.close,
                k.volume,
                k.quote_volume,
            ], (symbol, k)
        deals = read_deals(r, prefix, symbol)
        rest = {(t["time"], Decimal(t["price"]), Decimal(t["qty"])) for t in trades[symbol]}
        assert deals and {(d.time, d.price, d.quantity) for d in deals} <= rest
        assert [d.time for d in deals] == sorted(d.time for d in deals)
        history = read_price_history(r, prefix, symbol)
        assert history and [t for t, _ in history] == sorted(t for t, _ in history)
    # One run per closed minute, whichever symbol showed it first, never two.
    ids = [t.task_id for t in recorder.sent]
    assert len(ids) == len(set(ids)) >= 2
    minutes = {k.open_time // 60_000 for s in symbols for k in closed[s]}
    assert minutes <= {t.bucket for t in recorder.sent}
    assert all(t.kind == "candle" and t.kwargs["trigger"] == "tick" for t in recorder.sent)


# ---- connections -------------------------------------------------------------------------------


def test_more_than_ten_symbols_spread_over_connections_of_at_most_30(sim, r, prefix) -> None:
    symbols = sim.market.symbols[:35]
    set_watched(r, prefix, symbols)
    with StreamerThread(stream_settings(prefix), sim.ws_url):
        status = wait_until(lambda: fully_subscribed(r, prefix, 35 * 3 + 1), 20)
        data = [c for c in status if not c["name"].endswith(":mini")]
        assert len(data) == 4 and all(c["subscriptions"] <= 30 for c in status)
        assert [c["subscriptions"] for c in status if c["name"].endswith(":mini")] == [1]
        wait_until(lambda: all(read_book_ticker(r, prefix, s) for s in symbols))
        assert stream_health(r, prefix)["status"] == "ok"

        # The set shrinks: the connections fold into one, the others close.
        set_watched(r, prefix, symbols[:4])
        status = wait_until(lambda: fully_subscribed(r, prefix, 4 * 3 + 1), 10)
        assert len(status) == 2
        # A symbol no longer watched disappears with its TTL (3 s here).
        wait_until(lambda: read_book_ticker(r, prefix, symbols[-1]) is None, 10)
        assert read_book_ticker(r, prefix, symbols[0]) is not None


def test_a_dropped_connection_comes_back_resubscribed(sim, r, prefix) -> None:
    symbols = sim.market.symbols[:12]  # two data connections and the mini tickers
    set_watched(r, prefix, symbols)
    with StreamerThread(stream_settings(prefix), sim.ws_url):
        wait_until(lambda: fully_subscribed(r, prefix, 12 * 3 + 1))
        cut = time.time() * 1000
        started = time.monotonic()
        fault(sim, "ws_drop:count=3")
        wait_until(lambda: stream_metrics(r, prefix)["reconnects_total"] >= 3)
        status = wait_until(
            lambda: (
                (st := fully_subscribed(r, prefix, 12 * 3 + 1))
                and all(c["session"] >= 2 for c in st)
                and st
            )
        )
        wait_until(
            lambda: all(
                (b := read_book_ticker(r, prefix, s)) is not None and b.received_at > cut
                for s in symbols
            )
        )
        back_after = time.monotonic() - started
        # The mini tickers came back too.
        wait_until(
            lambda: (u := read_universe(r, prefix, 5)) and u.data_time.timestamp() * 1000 > cut
        )
    assert all(c["reconnects"] >= 1 and c["session"] >= 2 for c in status)
    reconnect = max(c["last_reconnect_sec"] for c in status)
    assert reconnect < 5 and back_after < 10
    print(f"\nreconnected in {reconnect:.3f} s; all books fresh again after {back_after:.2f} s")


def test_a_stalled_stream_makes_read_universe_none_so_the_stage_uses_rest(sim, r, prefix) -> None:
    set_watched(r, prefix, sim.market.symbols[:3])
    settings = stream_settings(prefix, stream_max_age_sec=2.0, stream_stall_timeout_sec=4.0)
    with StreamerThread(settings, sim.ws_url):
        wait_until(lambda: read_universe(r, prefix, 2))
        fault(sim, "ws_stall")
        stalled = time.monotonic()
        wait_until(lambda: read_universe(r, prefix, 2) is None, 10)
        went_stale = time.monotonic() - stalled
        assert 1.0 <= went_stale < 4.0
        health = wait_until(
            lambda: (h := stream_health(r, prefix, max_age_sec=2))["status"] != "ok" and h
        )
        assert "old" in health["detail"] or "no message" in health["detail"]
        # The stall outlasts STREAM_STALL_TIMEOUT_SEC: the streamer reconnects by itself.
        wait_until(lambda: stream_metrics(r, prefix)["reconnects_total"] >= 1, 10)
        httpx.delete(f"{sim.url}/_sim/faults").raise_for_status()
        wait_until(lambda: read_universe(r, prefix, 2), 10)
        wait_until(lambda: stream_health(r, prefix, max_age_sec=2)["status"] == "ok", 10)
        # Frames that keep coming with a frozen sendTime are stale too.
        fault(sim, "stale")
        wait_until(lambda: read_universe(r, prefix, 2) is None, 10)
        # the lag metrics are flushed every STREAM_FLUSH_INTERVAL_MS: wait for the next flush
        wait_until(lambda: stream_metrics(r, prefix)["lag_ms_max"] > 1000, 10)
    print(f"\nread_universe(max_age=2 s) returned None {went_stale:.2f} s into the stall")


def test_a_malformed_frame_is_skipped_with_its_reason_and_the_connection_stays(
    sim, r, prefix, caplog
) -> None:
    set_watched(r, prefix, sim.market.symbols[:3])
    caplog.set_level(logging.WARNING, logger="app.stream")
    with StreamerThread(stream_settings(prefix), sim.ws_url):
        status = wait_until(lambda: fully_subscribed(r, prefix, 3 * 3 + 1))
        sessions = {c["name"]: c["session"] for c in status}
        fault(sim, "ws_malformed:count=5")
        wait_until(lambda: stream_metrics(r, prefix)["decode_errors_total"] == 5)
        time.sleep(1.0)  # nothing else happens: no reconnect, data still flowing
        metrics = stream_metrics(r, prefix)
        status = fully_subscribed(r, prefix, 3 * 3 + 1)
        assert metrics["decode_errors_total"] == 5 and metrics["reconnects_total"] == 0
        assert status is not None and {c["name"]: c["session"] for c in status} == sessions
        assert stream_health(r, prefix)["status"] == "ok"
    refused = [rec for rec in caplog.records if "does not decode" in rec.getMessage()]
    assert refused and all("PushDataV3ApiWrapper" in rec.reason for rec in refused)  # type: ignore[attr-defined]
    print(f"\nmessages/s by channel: {metrics['messages_per_sec']}, lag: {metrics['lag_ms']}")


def test_a_refused_subscription_is_logged_with_mexcs_message(sim, r, prefix, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="app.stream")
    set_watched(r, prefix, ["BTCUSDT", "NOSUCHUSDT"])  # MEXC does not know the second one
    with StreamerThread(stream_settings(prefix), sim.ws_url):
        wait_until(lambda: stream_metrics(r, prefix)["refused_subscriptions_total"] == 3)
        wait_until(lambda: read_book_ticker(r, prefix, "BTCUSDT"))
        time.sleep(1.0)  # not asked again at once: no refusal loop
        assert stream_metrics(r, prefix)["refused_subscriptions_total"] == 3
        [data] = [c for c in connection_status(r, prefix) if c["name"].endswith(":c0")]
        assert data["connected"] and data["subscriptions"] == 3 and len(data["refused"]) == 3
    refused = [rec for rec in caplog.records if rec.getMessage() == "subscription refused by MEXC"]
    assert {rec.channel for rec in refused} == {  # type: ignore[attr-defined]
        "spot@public.aggre.bookTicker.v3.api.pb@100ms@NOSUCHUSDT",
        "spot@public.aggre.deals.v3.api.pb@100ms@NOSUCHUSDT",
        "spot@public.kline.v3.api.pb@NOSUCHUSDT@Min1",
    }
    assert all("Blocked!" in rec.mexc_msg for rec in refused)  # type: ignore[attr-defined]


def test_ping_keeps_a_quiet_connection_open_and_connections_rotate(r, prefix) -> None:
    # The server drops a connection after 1.5 s without data flow and after 6 s in all.
    ws = WsSettings(mini_tickers_interval=0.5, idle_timeout=1.5, max_lifetime=6.0)
    settings = stream_settings(
        prefix,
        stream_ping_interval_sec=0.4,
        stream_stall_timeout_sec=30.0,
        stream_rotate_after_sec=2.5,
    )
    with SimulatorServer(n_symbols=40, seed=11, ws_settings=ws) as sim:
        set_watched(r, prefix, ["BTCUSDT"])
        with StreamerThread(settings, sim.ws_url):
            wait_until(lambda: fully_subscribed(r, prefix, 4))
            fault(sim, "ws_stall:delay=2.5")  # no data for longer than the idle timeout
            time.sleep(3.0)
            status = wait_until(
                lambda: (
                    (st := fully_subscribed(r, prefix, 4))
                    and all(c["rotations"] >= 2 for c in st)
                    and st
                ),
                10,
            )
            metrics = stream_metrics(r, prefix)
    # Never dropped by the server (idle, or at its lifetime): only planned rotations.
    assert metrics["reconnects_total"] == 0 and metrics["rotations_total"] >= 4
    assert all(c["last_error"] is None for c in status)
