"""The simulator's WebSocket side as a MEXC client sees it: control messages, limits, every body
type decoded with the repository's codec, faults, and frames that agree with REST."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from app.exchange.proto import (
    AggreDepth,
    BookTicker,
    Deals,
    Frame,
    FrameDecodeError,
    Kline,
    LimitDepth,
    MiniTicker,
    MiniTickers,
    decode,
)
from app.exchange.simulator import SimulatorServer, WsSettings

pytestmark = pytest.mark.unit

T0 = 1_760_000_000_000
BLOCKED = "Not Subscribed successfully! [{}].  Reason\uff1a Blocked! "  # MEXC's full-width colon
BOOK = "spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT"
DEALS = "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"
DEPTH = "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"
LIMIT = "spot@public.limit.depth.v3.api.pb@BTCUSDT@5"
KLINE = "spot@public.kline.v3.api.pb@BTCUSDT@Min1"
MINI = "spot@public.miniTicker.v3.api.pb@BTCUSDT@UTC+8"
MINIS = "spot@public.miniTickers.v3.api.pb@UTC+8"
FAST = WsSettings(mini_tickers_interval=0.3, kline_interval=0.3)


class Clock:
    """Market time: frozen at `now`, or running `speed` times faster than the wall clock."""

    def __init__(self, now: int = T0, speed: float = 0.0) -> None:
        self.now, self.speed, self._t0 = now, speed, time.monotonic()

    def __call__(self) -> int:
        return self.now + int((time.monotonic() - self._t0) * 1000 * self.speed)


@pytest.fixture(scope="module")
def frozen() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def sim(frozen: Clock) -> Iterator[SimulatorServer]:
    with SimulatorServer(n_symbols=20, seed=2, clock=frozen, ws_settings=FAST) as server:
        yield server


@pytest.fixture
def fast_sim() -> Iterator[SimulatorServer]:
    """Market time runs a minute per second, so trades and candles move within a test."""
    with SimulatorServer(n_symbols=20, seed=2, clock=Clock(T0, 60.0), ws_settings=FAST) as s:
        yield s


def request(ws: ClientConnection, method: str, *params: str, **extra: Any) -> dict[str, Any]:
    """Send a control message and return its answer (data frames in between are skipped)."""
    ws.send(json.dumps({"method": method, "params": list(params), **extra}))
    while True:
        message = ws.recv(timeout=5)
        if isinstance(message, str):
            return json.loads(message)


def frames(ws: ClientConnection, seconds: float) -> Iterator[Frame]:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = ws.recv(timeout=left)
        except TimeoutError:
            return
        if isinstance(message, bytes):
            yield decode(message)


def first(ws: ClientConnection, kind: type, seconds: float = 5) -> Any:
    for frame in frames(ws, seconds):
        if isinstance(frame.body, kind):
            return frame
    raise AssertionError(f"no {kind.__name__} frame within {seconds} s")


def closed(ws: ClientConnection, seconds: float) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as info:
        for _ in frames(ws, seconds):
            pass
        ws.recv(timeout=0.5)
    return info.value


# ---- control messages and limits -----------------------------------------------------------


def test_subscribe_ping_unsubscribe_answers(sim: SimulatorServer) -> None:
    with connect(sim.ws_url) as ws:
        assert request(ws, "SUBSCRIPTION", BOOK, KLINE) == {
            "id": 0,
            "code": 0,
            "msg": f"{BOOK},{KLINE}",
        }
        assert request(ws, "PING") == {"id": 0, "code": 0, "msg": "PONG"}
        assert request(ws, "PING", id=7)["id"] == 7
        assert request(ws, "UNSUBSCRIPTION", BOOK) == {"id": 0, "code": 0, "msg": BOOK}
        for frame in frames(ws, 0.8):  # only the kline stream is left
            assert frame.channel == KLINE


def test_invalid_channels_are_blocked(sim: SimulatorServer) -> None:
    bad = [
        "spot@public.aggre.deals.v3.api.pb@100ms@NOPEUSDT",
        "spot@public.aggre.deals.v3.api.pb@100ms@btcusdt",  # symbols are upper case
        "spot@public.aggre.deals.v3.api.pb@50ms@BTCUSDT",
        "spot@public.deals.v3.api@BTCUSDT",  # the retired JSON channels
        "spot@public.kline.v3.api.pb@BTCUSDT@Hour2",
        "spot@public.limit.depth.v3.api.pb@BTCUSDT@15",
        "spot@public.miniTickers.v3.api.pb@UTC+25",
    ]
    with connect(sim.ws_url) as ws:
        for channel in bad:
            assert request(ws, "SUBSCRIPTION", channel)["msg"] == BLOCKED.format(channel)
        answer = request(ws, "SUBSCRIPTION", BOOK, bad[0])
        assert answer == {
            "id": 0,
            "code": 0,
            "msg": f"Subscribed successful! [{BOOK}]. {BLOCKED.format(bad[0])}",
        }
        ws.send("not json")  # ignored, as MEXC does
        assert request(ws, "PING")["msg"] == "PONG"


def test_at_most_30_subscriptions_a_connection(sim: SimulatorServer) -> None:
    symbols = sim.market.symbols
    channels = [f"spot@public.kline.v3.api.pb@{s}@Min{m}" for s in symbols for m in (1, 5)][:32]
    with connect(sim.ws_url) as ws:
        answer = request(ws, "SUBSCRIPTION", *channels[:31])
        assert answer["msg"] == (
            f"Subscribed successful! [{','.join(channels[:30])}]. {BLOCKED.format(channels[30])}"
        )
        assert request(ws, "SUBSCRIPTION", channels[31])["msg"] == BLOCKED.format(channels[31])
        assert request(ws, "SUBSCRIPTION", channels[0])["msg"] == channels[0]  # already there
        assert request(ws, "UNSUBSCRIPTION", channels[0])["msg"] == channels[0]
        assert request(ws, "SUBSCRIPTION", channels[31])["msg"] == channels[31]  # room again


def test_connection_timers() -> None:
    settings = WsSettings(no_subscription_timeout=0.6, idle_timeout=0.8, max_lifetime=2.5)
    with SimulatorServer(n_symbols=5, clock=Clock(), ws_settings=settings) as sim:
        with connect(sim.ws_url) as ws:  # never subscribes
            error = closed(ws, 3)
            assert error.rcvd is not None and error.rcvd.reason == "no valid subscription"
        with connect(sim.ws_url) as ws:  # a refused subscription is no valid one
            request(ws, "SUBSCRIPTION", "spot@public.nope")
            assert closed(ws, 3).rcvd.reason == "no valid subscription"
        with connect(sim.ws_url) as ws:  # subscribed, but a frozen market trades nothing
            request(ws, "SUBSCRIPTION", DEALS)
            started = time.monotonic()
            assert closed(ws, 3).rcvd.reason == "no data flow"
            assert 0.7 < time.monotonic() - started < 2
        with connect(sim.ws_url) as ws:  # PINGs keep it open, until the lifetime ends
            request(ws, "SUBSCRIPTION", DEALS)
            opened = time.monotonic()
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    request(ws, "PING")
                    time.sleep(0.3)
            assert info.value.rcvd.reason == "connection lifetime exceeded"
            assert 2.3 < time.monotonic() - opened < 3.5


# ---- data frames ---------------------------------------------------------------------------


def test_every_body_type_decodes(fast_sim: SimulatorServer) -> None:
    wanted = {
        BOOK: BookTicker,
        DEALS: Deals,
        DEPTH: AggreDepth,
        LIMIT: LimitDepth,
        KLINE: Kline,
        MINI: MiniTicker,
        MINIS: MiniTickers,
    }
    seen: dict[str, Frame] = {}
    with connect(fast_sim.ws_url) as ws:
        assert request(ws, "SUBSCRIPTION", *wanted)["msg"] == ",".join(wanted)
        for frame in frames(ws, 6):
            assert isinstance(frame.body, wanted[frame.channel])
            assert frame.create_time is not None and frame.send_time == frame.create_time
            seen.setdefault(frame.channel, frame)
            if len(seen) == len(wanted):
                break
    assert set(seen) == set(wanted)
    for channel, frame in seen.items():
        if channel != MINIS:
            assert frame.symbol == "BTCUSDT"
            assert frame.symbol_id == fast_sim.market.spec("BTCUSDT").symbol_id
    assert len(seen[MINIS].body.items) == len(fast_sim.market.symbols)
    kline = seen[KLINE].body
    assert kline.window_end - kline.window_start == 60  # seconds, as MEXC sends them
    assert seen[DEALS].body.event_type == "spot@public.aggre.deals.v3.api.pb@100ms"


def test_frames_are_the_rest_answers_of_their_moment(sim: SimulatorServer, frozen: Clock) -> None:
    frozen.now = T0
    get = httpx.Client(base_url=sim.url, timeout=5).get
    with connect(sim.ws_url) as ws:
        request(ws, "SUBSCRIPTION", BOOK, KLINE, "spot@public.kline.v3.api.pb@BTCUSDT@Hour4")
        request(ws, "SUBSCRIPTION", LIMIT, MINI, DEALS)
        book = first(ws, BookTicker)
        assert book.create_time == T0
        rest = get("/api/v3/ticker/bookTicker", params={"symbol": "BTCUSDT"}).json()
        assert [book.body.bid_price, book.body.bid_quantity] == [
            Decimal(rest["bidPrice"]),
            Decimal(rest["bidQty"]),
        ]
        assert [book.body.ask_price, book.body.ask_quantity] == [
            Decimal(rest["askPrice"]),
            Decimal(rest["askQty"]),
        ]
        depth = get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5}).json()
        assert book.body.version == int(depth["lastUpdateId"])
        limit = first(ws, LimitDepth).body
        assert [[format(x.price, "f"), format(x.quantity, "f")] for x in limit.bids] == depth[
            "bids"
        ]
        assert [[format(x.price, "f"), format(x.quantity, "f")] for x in limit.asks] == depth[
            "asks"
        ]
        for interval, name in (("1m", "Min1"), ("4h", "Hour4")):
            kline = next(
                f.body
                for f in frames(ws, 3)
                if isinstance(f.body, Kline) and f.body.interval == name
            )
            row = get(
                "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": interval, "limit": 1}
            ).json()[0]
            assert [kline.window_start * 1000, kline.window_end * 1000] == [row[0], row[6]]
            assert [
                kline.opening_price,
                kline.highest_price,
                kline.lowest_price,
                kline.closing_price,
                kline.volume,
                kline.amount,
            ] == [Decimal(x) for x in (*row[1:6], row[7])]
        mini = first(ws, MiniTicker).body
        ticker = get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"}).json()
        assert (mini.price, mini.high, mini.low, mini.volume, mini.quantity) == tuple(
            Decimal(ticker[k])
            for k in ("lastPrice", "highPrice", "lowPrice", "quoteVolume", "volume")
        )
        # rate: the change since 00:00 UTC+8, against that minute's open
        day = (T0 + 8 * 3_600_000) // 86_400_000 * 86_400_000 - 8 * 3_600_000
        opened = Decimal(
            get(
                "/api/v3/klines",
                params={"symbol": "BTCUSDT", "interval": "1m", "startTime": day, "limit": 1},
            ).json()[0][1]
        )
        assert mini.rate == ((mini.price - opened) / opened).quantize(Decimal("0.0001"))
        # two minutes pass: the deals stream sends exactly the trades REST lists for them
        frozen.now = T0 + 120_000
        deals = first(ws, Deals).body.deals
        rest_trades = get(
            "/api/v3/aggTrades",
            params={"symbol": "BTCUSDT", "startTime": T0 + 1, "endTime": T0 + 120_000},
        ).json()
        assert [(d.time, d.price, d.quantity, d.trade_type == 2) for d in deals] == [
            (t["T"], Decimal(t["p"]), Decimal(t["q"]), t["m"]) for t in rest_trades
        ]
        assert len({d.trade_id for d in deals}) == len(deals)
    frozen.now = T0


def test_depth_diffs_keep_a_rest_snapshot_in_sync(fast_sim: SimulatorServer) -> None:
    """MEXC's recipe: buffer the diffs, take a REST snapshot, apply the diffs whose versions
    follow it (a gap means: take a new snapshot); the local book then equals /api/v3/depth at
    every diff's moment."""
    market = fast_sim.market

    def snapshot() -> tuple[int, dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        body = httpx.get(
            f"{fast_sim.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 1000}
        ).json()
        return (
            int(body["lastUpdateId"]),
            {Decimal(p): Decimal(q) for p, q in body["bids"]},
            {Decimal(p): Decimal(q) for p, q in body["asks"]},
        )

    with connect(fast_sim.ws_url) as ws:
        request(ws, "SUBSCRIPTION", DEPTH)
        buffered = [first(ws, AggreDepth)]
        version, bids, asks = snapshot()
        buffered.extend(f for f in frames(ws, 4) if isinstance(f.body, AggreDepth))
    applied, previous_to = 0, None
    for frame in buffered:
        diff = frame.body
        if previous_to is not None and diff.from_version != previous_to + 1:
            version, bids, asks = snapshot()  # a gap: start again (never here at this pace)
            raise AssertionError("unexpected version gap")
        previous_to = diff.to_version
        if diff.to_version < version:
            continue  # older than the snapshot
        assert applied or diff.from_version <= version + 1  # the snapshot falls inside
        for side, levels in ((bids, diff.bids), (asks, diff.asks)):
            for level in levels:
                if level.quantity == 0:
                    side.pop(level.price, None)
                else:
                    side[level.price] = level.quantity
        applied += 1
        truth = market.depth("BTCUSDT", 100, frame.create_time)
        local_bids = sorted(bids, reverse=True)[:100]
        local_asks = sorted(asks)[:100]
        assert [[format(p, "f"), format(bids[p], "f")] for p in local_bids] == truth["bids"]
        assert [[format(p, "f"), format(asks[p], "f")] for p in local_asks] == truth["asks"]
    assert applied >= 5


def test_depth_gaps_make_the_client_resync(sim: SimulatorServer, frozen: Clock) -> None:
    """A move too large for a diff (a crash), and a scenario that rewrites the book's
    history, are sent as a skipped version: MEXC's signal to take a new snapshot."""
    frozen.now = T0
    sim.set_scenario("BTCUSDT", price_factor="0.5", started_at_ms=T0 + 1_000)
    try:
        with connect(sim.ws_url) as ws:
            request(ws, "SUBSCRIPTION", DEPTH)
            frozen.now = T0 + 500
            before = first(ws, AggreDepth).body  # an ordinary diff
            frozen.now = T0 + 2_000  # the crash: thousands of levels go at once
            crash = first(ws, AggreDepth).body
            assert crash.from_version == before.to_version + 2  # a gap ...
            assert crash.asks == crash.bids == ()  # ... and no levels
            rest = sim.market.depth("BTCUSDT", 5, frozen.now)
            assert crash.to_version == int(rest["lastUpdateId"])  # the snapshot to take
            sim.set_scenario("BTCUSDT", spread_factor="2")  # rewrites the book from now on
            frozen.now = T0 + 2_100
            rewritten = first(ws, AggreDepth).body
            assert rewritten.from_version == crash.to_version + 2 and rewritten.asks == ()
    finally:
        sim.clear_scenarios()
        frozen.now = T0


# ---- faults --------------------------------------------------------------------------------


def test_dropped_connection(fast_sim: SimulatorServer) -> None:
    with connect(fast_sim.ws_url) as ws:
        request(ws, "SUBSCRIPTION", BOOK)
        first(ws, BookTicker)
        r = httpx.post(f"{fast_sim.url}/_sim/faults", json={"mode": "ws_drop", "count": 1})
        assert r.status_code == 201
        error = closed(ws, 3)
        assert isinstance(error, ConnectionClosedError) and error.rcvd is None  # no close frame
    assert fast_sim.faults.list() == []  # its count is used up
    with connect(fast_sim.ws_url) as ws:  # the next connection is fine
        request(ws, "SUBSCRIPTION", BOOK)
        first(ws, BookTicker)


def test_stalled_stream() -> None:
    with (
        SimulatorServer(
            n_symbols=5, clock=Clock(T0, 60.0), ws_settings=FAST, faults=["ws_stall:delay=1.2"]
        ) as sim,
        connect(sim.ws_url) as ws,
    ):
        request(ws, "SUBSCRIPTION", BOOK)
        started = time.monotonic()
        assert request(ws, "PING")["msg"] == "PONG"  # control messages still flow
        first(ws, BookTicker, 4)
        assert time.monotonic() - started >= 1.1  # no data until the stall is over
        assert sim.faults.list() == []


def test_malformed_frames(fast_sim: SimulatorServer) -> None:
    fast_sim.faults.add("ws_malformed:count=2")
    with connect(fast_sim.ws_url) as ws:
        request(ws, "SUBSCRIPTION", BOOK)
        received = [ws.recv(timeout=3) for _ in range(4)]
    errors = 0
    for data in received:
        try:
            assert isinstance(decode(data).body, BookTicker)
        except FrameDecodeError as exc:
            assert "not a PushDataV3ApiWrapper" in str(exc)
            errors += 1
    assert errors == 2


def test_slow_consumer_is_closed() -> None:
    settings = WsSettings(mini_tickers_interval=0.05, send_buffer_bytes=20_000)
    with (
        SimulatorServer(n_symbols=40, clock=Clock(T0, 1.0), ws_settings=settings) as sim,
        connect(sim.ws_url) as ws,
    ):
        request(ws, "SUBSCRIPTION", MINIS)
        first(ws, MiniTickers)  # it reads fine ...
        sim.faults.add("ws_slow_consumer:count=1")  # ... until it stops reading
        error = closed(ws, 5)
        assert error.rcvd is not None and error.rcvd.code == 1008
        assert "slow consumer" in error.rcvd.reason


def test_stale_fault_freezes_the_streams(fast_sim: SimulatorServer) -> None:
    fault = fast_sim.faults.add("stale")
    with connect(fast_sim.ws_url) as ws:
        request(ws, "SUBSCRIPTION", BOOK)
        times = {f.create_time for f in frames(ws, 0.6)}
    assert times == {fault.frozen_at_ms}
    fast_sim.faults.clear()


def test_ws_lifecycle_and_urls() -> None:
    sim = SimulatorServer(n_symbols=3).start()
    port = sim.ws.port
    assert sim.ws_url == f"ws://127.0.0.1:{port}/ws"
    assert httpx.get(f"{sim.url}/_sim/info").json()["ws_url"] == sim.ws_url
    with pytest.raises(InvalidStatus):
        connect(sim.ws_url.replace("/ws", "/nope"))
    with connect(sim.ws_url) as ws:
        request(ws, "SUBSCRIPTION", BOOK)
        sim.stop()  # stopping the simulator closes its connections
        with pytest.raises(ConnectionClosed):
            for _ in frames(ws, 2):
                pass
            ws.recv(timeout=1)
    assert not [t for t in threading.enumerate() if t.name == f"mexc-sim-ws:{port}"]
    with pytest.raises(RuntimeError):
        _ = sim.ws_url
