"""The MEXC simulator over real HTTP: endpoints, errors, weights, faults, control API."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from app.exchange.simulator import (
    FaultInjector,
    SimulatedMarket,
    SimulatorServer,
    parse_fault_spec,
    run_simulator,
)
from app.exchange.simulator.faults import Fault

pytestmark = pytest.mark.unit

N_SYMBOLS = 30
INVALID_SYMBOL = {"msg": "Invalid symbol.", "code": -1121, "_extend": None}
INVALID_INTERVAL = {"msg": "Invalid interval.", "code": -1121, "_extend": None}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(n_symbols=N_SYMBOLS, seed=4) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    sim.faults.reset()
    sim.app.weights.reset()
    with httpx.Client(base_url=sim.url, timeout=5) as c:
        yield c


# ---- MEXC endpoints ------------------------------------------------------------------------


def test_ping_time_default_symbols(client: httpx.Client, sim: SimulatorServer) -> None:
    r = client.get("/api/v3/ping")
    assert r.status_code == 200 and r.json() == {}
    assert r.headers["content-type"].startswith("application/json")
    before = int(time.time() * 1000)
    server_time = client.get("/api/v3/time").json()["serverTime"]
    assert isinstance(server_time, int) and abs(server_time - before) < 5000
    body = client.get("/api/v3/defaultSymbols").json()
    assert body["code"] == 200 and body["msg"] is None
    assert body["data"] == sim.market.default_symbols() and "BTCUSDT" in body["data"]


def test_exchange_info_variants(client: httpx.Client, sim: SimulatorServer) -> None:
    full = client.get("/api/v3/exchangeInfo").json()
    assert full["timezone"] == "CST" and isinstance(full["serverTime"], int)
    assert [s["symbol"] for s in full["symbols"]] == sim.market.symbols
    one = client.get("/api/v3/exchangeInfo", params={"symbol": "ETHUSDT"}).json()
    assert [s["symbol"] for s in one["symbols"]] == ["ETHUSDT"]
    two = client.get("/api/v3/exchangeInfo", params={"symbols": "BTCUSDT,ETHBTC"}).json()
    assert [s["symbol"] for s in two["symbols"]] == ["BTCUSDT", "ETHBTC"]
    arr = client.get("/api/v3/exchangeInfo", params={"symbols": '["SOLUSDT","BTCUSDC"]'}).json()
    assert [s["symbol"] for s in arr["symbols"]] == ["SOLUSDT", "BTCUSDC"]
    bad = client.get("/api/v3/exchangeInfo", params={"symbol": "NOPEUSDT"})
    assert bad.status_code == 400 and bad.json() == INVALID_SYMBOL


def test_tickers_object_and_array(client: httpx.Client, sim: SimulatorServer) -> None:
    one = client.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"}).json()
    assert isinstance(one, dict) and one["symbol"] == "BTCUSDT" and one["count"] is None
    assert isinstance(one["openTime"], int) and one["closeTime"] - one["openTime"] == 86_400_000
    every = client.get("/api/v3/ticker/24hr").json()
    assert isinstance(every, list) and [t["symbol"] for t in every] == sim.market.symbols
    price = client.get("/api/v3/ticker/price", params={"symbol": "ETHUSDT"}).json()
    assert set(price) == {"symbol", "price"} and Decimal(price["price"]) > 0
    prices = client.get("/api/v3/ticker/price").json()
    assert len(prices) == len(sim.market.symbols)
    book = client.get("/api/v3/ticker/bookTicker", params={"symbol": "SOLUSDT"}).json()
    assert set(book) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
    assert Decimal(book["bidPrice"]) < Decimal(book["askPrice"])
    books = client.get("/api/v3/ticker/bookTicker").json()
    assert isinstance(books, list) and len(books) == len(sim.market.symbols)


def test_depth_klines_avg_price_trades(client: httpx.Client) -> None:
    depth = client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 7}).json()
    assert len(depth["bids"]) == len(depth["asks"]) == 7
    assert depth["lastUpdateId"].isdigit() and depth["timestamp"].isdigit()  # strings, as MEXC
    assert len(client.get("/api/v3/depth", params={"symbol": "BTCUSDT"}).json()["bids"]) == 100
    rows = client.get("/api/v3/klines", params={"symbol": "ETHUSDT", "interval": "5m"}).json()
    assert len(rows) == 500 and all(len(r) == 8 for r in rows)
    assert isinstance(rows[0][0], int) and isinstance(rows[0][1], str)
    window = client.get(
        "/api/v3/klines",
        params={
            "symbol": "ETHUSDT",
            "interval": "5m",
            "startTime": rows[10][0],
            "endTime": rows[20][0],
        },
    ).json()
    assert [r[0] for r in window] == [r[0] for r in rows[10:20]]
    capped = client.get(
        "/api/v3/klines", params={"symbol": "ETHUSDT", "interval": "1m", "limit": 5000}
    ).json()
    assert len(capped) == 500  # MEXC serves at most 500 klines
    avg = client.get("/api/v3/avgPrice", params={"symbol": "ETHUSDT"}).json()
    assert avg["mins"] == 5 and Decimal(avg["price"]) > 0
    trades = client.get("/api/v3/trades", params={"symbol": "ETHUSDT", "limit": 3}).json()
    assert len(trades) == 3 and trades[0]["id"] is None


def test_same_seed_servers_answer_identically() -> None:
    clock = lambda: 1_750_000_000_000  # noqa: E731
    bodies = []
    for _ in range(2):
        with SimulatorServer(n_symbols=12, seed=9, clock=clock) as s:
            bodies.append(httpx.get(f"{s.url}/api/v3/ticker/24hr").text)
    assert bodies[0] == bodies[1]
    with SimulatorServer(n_symbols=12, seed=10, clock=clock) as s:
        assert httpx.get(f"{s.url}/api/v3/ticker/24hr").text != bodies[0]


# ---- MEXC errors ---------------------------------------------------------------------------


def test_errors(client: httpx.Client) -> None:
    r = client.get("/api/v3/klines", params={"symbol": "NOPEUSDT", "interval": "1m"})
    assert r.status_code == 400 and r.json() == INVALID_SYMBOL
    r = client.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1h"})
    assert r.status_code == 400 and r.json() == INVALID_INTERVAL
    r = client.get("/api/v3/ticker/24hr", params={"symbol": "NOPEUSDT"})
    assert r.status_code == 400 and r.json() == INVALID_SYMBOL
    r = client.get("/api/v3/depth")
    assert r.status_code == 400 and r.json()["code"] == -1102 and "'symbol'" in r.json()["msg"]
    r = client.get("/api/v3/klines", params={"symbol": "BTCUSDT"})
    assert r.status_code == 400 and r.json()["code"] == -1102 and "'interval'" in r.json()["msg"]
    r = client.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "ten"})
    assert r.status_code == 400 and r.json()["code"] == 700008  # MEXC's illegal parameter
    r = client.get(
        "/api/v3/klines",
        params={"symbol": "BTCUSDT", "interval": "1m", "startTime": 2000, "endTime": 1000},
    )
    assert r.status_code == 400 and r.json()["code"] == -1128
    r = client.get("/api/v3/nonsense")
    assert r.status_code == 404 and r.json()["code"] == 404
    assert client.post("/api/v3/ping").status_code == 405


# ---- request weight ------------------------------------------------------------------------


def test_weight_limit_returns_429_with_retry_after() -> None:
    with (
        SimulatorServer(n_symbols=5, seed=1, weight_limit=100) as s,
        httpx.Client(base_url=s.url) as c,
    ):
        assert c.get("/api/v3/ticker/24hr").status_code == 200  # weight 40
        assert c.get("/api/v3/exchangeInfo").status_code == 200  # weight 10
        assert c.get("/api/v3/ticker/24hr").status_code == 200  # 90 used
        for _ in range(10):
            assert c.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"}).status_code == 200
        assert c.get("/_sim/info").json()["weight_used"] == 100
        r = c.get("/api/v3/ping")
        assert r.status_code == 429
        assert 1 <= int(r.headers["Retry-After"]) <= 10
        assert r.json()["code"] == 429  # MEXC's error table, not Binance's -1003
        log = c.get("/_sim/requests").json()
        assert log["by_path_status"]["/api/v3/ping"] == {"429": 1}
        assert c.post("/_sim/reset").json() == {"ok": True}
        assert c.get("/api/v3/ping").status_code == 200


# ---- faults over HTTP ----------------------------------------------------------------------


def test_rate_limit_fault_with_count_expiry(client: httpx.Client, sim: SimulatorServer) -> None:
    sim.faults.add("rate_limit:count=2,retry_after=3")
    for _ in range(2):
        r = client.get("/api/v3/time")
        assert r.status_code == 429 and r.headers["Retry-After"] == "3"
        assert r.json()["code"] == 429 and "_extend" in r.json()
    assert client.get("/api/v3/time").status_code == 200
    assert sim.faults.list() == []
    assert sim.faults.count("/api/v3/time", 429) == 2
    assert sim.faults.count("/api/v3/time", 200) == 1


@pytest.mark.parametrize("status", [None, 500, 502, 503])
def test_server_error_fault(client: httpx.Client, sim: SimulatorServer, status: int | None) -> None:
    sim.faults.add(Fault("server_error", count=1, status=status))
    r = client.get("/api/v3/ping")
    assert r.status_code == (status or 503)
    if status == 500:
        assert r.json()["code"] == -1000
    else:
        assert "<html>" in r.text
    assert client.get("/api/v3/ping").status_code == 200


def test_slow_fault(client: httpx.Client, sim: SimulatorServer) -> None:
    sim.faults.add("slow:delay=0.6,count=1")
    start = time.monotonic()
    r = client.get("/api/v3/ticker/price", params={"symbol": "BTCUSDT"})
    assert time.monotonic() - start >= 0.6
    assert r.status_code == 200 and r.json()["symbol"] == "BTCUSDT"
    start = time.monotonic()
    client.get("/api/v3/ping")
    assert time.monotonic() - start < 0.5


def test_timeout_fault(client: httpx.Client, sim: SimulatorServer) -> None:
    sim.faults.add("timeout:delay=1.5,count=1")
    with pytest.raises(httpx.ReadTimeout):
        client.get("/api/v3/ping", timeout=0.3)
    start = time.monotonic()
    assert client.get("/api/v3/ping").status_code == 200
    assert time.monotonic() - start < 0.5


def test_malformed_fault(client: httpx.Client, sim: SimulatorServer) -> None:
    good = client.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"})
    sim.faults.add("malformed:count=1")
    r = client.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"})
    assert r.status_code == 200 and r.text.startswith('{"symbol":"BTCUSDT","')
    assert 0 < len(r.content) < len(good.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)
    assert client.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"}).json()["symbol"]


def test_forbidden_fault(client: httpx.Client, sim: SimulatorServer) -> None:
    sim.faults.add("forbidden")
    for _ in range(3):
        r = client.get("/api/v3/exchangeInfo")
        assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    sim.faults.clear()
    assert client.get("/api/v3/exchangeInfo").status_code == 200


def test_stale_fault_freezes_the_market_clock(client: httpx.Client, sim: SimulatorServer) -> None:
    def close_times() -> tuple[int, int, int]:
        ticker = client.get("/api/v3/ticker/24hr", params={"symbol": "BTCUSDT"}).json()
        kline = client.get(
            "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1}
        ).json()
        server_time = client.get("/api/v3/time").json()["serverTime"]
        return ticker["closeTime"], kline[0][6], server_time

    live_a = close_times()
    time.sleep(0.02)
    assert close_times()[0] > live_a[0]  # without the fault, time advances
    fault = sim.faults.add("stale")
    frozen_a = close_times()
    time.sleep(0.05)
    frozen_b = close_times()
    assert frozen_a == frozen_b
    assert frozen_a[0] == frozen_a[2] == fault.frozen_at_ms
    time.sleep(0.01)
    sim.faults.clear()
    assert close_times()[0] > frozen_a[0]


def test_path_filter_and_first_match(client: httpx.Client, sim: SimulatorServer) -> None:
    sim.faults.add("server_error:path=/api/v3/klines,status=502")
    sim.faults.add("forbidden:path=/api/v3/ticker/*")
    sim.faults.add("rate_limit:count=1")
    params = {"symbol": "BTCUSDT", "interval": "1m", "limit": 2}
    assert client.get("/api/v3/klines", params=params).status_code == 502
    assert client.get("/api/v3/ticker/price").status_code == 403
    assert client.get("/api/v3/ticker/bookTicker").status_code == 403
    assert client.get("/api/v3/ping").status_code == 429  # only the catch-all matches
    assert client.get("/api/v3/ping").status_code == 200
    assert client.get("/api/v3/klines", params=params).status_code == 502
    assert [f.mode for f in sim.faults.list()] == ["server_error", "forbidden"]


def test_faults_from_constructor_and_admin_not_affected() -> None:
    with SimulatorServer(n_symbols=5, faults=["server_error:count=1"]) as s:
        assert httpx.get(f"{s.url}/_sim/faults").status_code == 200  # control API is exempt
        assert httpx.get(f"{s.url}/api/v3/ping").status_code == 503
        assert httpx.get(f"{s.url}/api/v3/ping").status_code == 200
    with pytest.raises(ValueError, match="nope"):
        SimulatorServer(n_symbols=5, faults=["nope"])


# ---- control API ---------------------------------------------------------------------------


def test_control_api(client: httpx.Client) -> None:
    r = client.post("/_sim/faults", json={"mode": "rate_limit", "count": 1, "retry_after": 4})
    assert r.status_code == 201
    created = r.json()["fault"]
    assert created["mode"] == "rate_limit" and created["count"] == 1 and created["id"] >= 1
    r = client.post("/_sim/faults", json={"spec": "slow:delay=0.1,path=/api/v3/depth"})
    assert r.status_code == 201 and r.json()["fault"]["path"] == "/api/v3/depth"
    listed = client.get("/_sim/faults").json()["faults"]
    assert [f["mode"] for f in listed] == ["rate_limit", "slow"]
    assert client.post("/_sim/faults", json={"mode": "explode"}).status_code == 400
    assert client.post("/_sim/faults", json={"mode": "slow", "bogus": 1}).status_code == 400
    assert client.post("/_sim/faults", content=b"not json").status_code == 400
    assert client.post("/_sim/faults", json={"spec": "slow:count=0"}).status_code == 400

    r = client.get("/api/v3/ping")
    assert r.status_code == 429 and r.headers["Retry-After"] == "4"
    assert client.delete(f"/_sim/faults/{listed[1]['id']}").json() == {"removed": listed[1]["id"]}
    assert client.delete("/_sim/faults/9999").status_code == 404
    client.post("/_sim/faults", json={"mode": "forbidden"})
    assert client.delete("/_sim/faults").json() == {"cleared": 1}
    assert client.get("/_sim/faults").json() == {"faults": []}

    client.get("/api/v3/ping")
    client.get("/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1h"})
    log = client.get("/_sim/requests").json()
    assert log["total"] == 3
    assert log["by_path"] == {"/api/v3/ping": 2, "/api/v3/klines": 1}
    assert log["by_path_status"]["/api/v3/ping"] == {"200": 1, "429": 1}
    assert log["by_path_status"]["/api/v3/klines"] == {"400": 1}
    assert log["recent"][0]["fault"] == "rate_limit" and log["recent"][0]["status"] == 429
    assert log["recent"][-1]["query"] == "symbol=BTCUSDT&interval=1h"

    client.post("/_sim/faults", json={"mode": "forbidden"})
    assert client.post("/_sim/reset").json() == {"ok": True}
    assert client.get("/_sim/requests").json()["total"] == 0
    assert client.get("/_sim/faults").json() == {"faults": []}
    info = client.get("/_sim/info").json()
    assert info["n_symbols"] == N_SYMBOLS and info["seed"] == 4 and info["weight_used"] == 0
    assert client.get("/_sim/whatever").status_code == 404


# ---- fault specs and the injector ----------------------------------------------------------


def test_parse_fault_spec() -> None:
    f = parse_fault_spec("rate_limit:count=3,retry_after=2,path=/api/v3/klines")
    assert (f.mode, f.count, f.retry_after, f.path) == ("rate_limit", 3, 2, "/api/v3/klines")
    assert parse_fault_spec("stale") == Fault("stale")
    slow = parse_fault_spec(" slow : delay=1.5 ")
    assert slow.delay == 1.5 and slow.effective_delay == 1.5
    assert parse_fault_spec("timeout").effective_delay > 5
    assert parse_fault_spec("server_error:status=502").effective_status == 502
    assert parse_fault_spec("server_error").effective_status == 503


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("", "empty"),
        ("explode", "'explode'"),
        ("slow:speed=3", "'speed'"),
        ("slow:count=abc", "count=abc"),
        ("slow:count=0", "count=0"),
        ("slow:delay", "'delay'"),
        ("slow:delay=-1", "delay=-1.0"),
        ("rate_limit:retry_after=1.5", "retry_after=1.5"),
        ("slow:path=api/v3/klines", "path='api/v3/klines'"),
        ("server_error:status=404", "status=404"),
        ("slow:count=1,count=2", "'count'"),
    ],
)
def test_parse_fault_spec_errors(spec: str, names: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_fault_spec(spec)
    assert names in str(err.value)


def test_injector_count_is_thread_safe() -> None:
    injector = FaultInjector(clock=lambda: 0)
    injector.add("rate_limit:count=100")
    hits = []

    def worker() -> None:
        for _ in range(50):
            if injector.take("/api/v3/ping") is not None:
                hits.append(1)
            injector.record("GET", "/api/v3/ping", "", 200)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(hits) == 100 and injector.list() == []
    assert injector.count() == 400 and injector.count("/api/v3/ping", 200) == 400


# ---- lifecycle -----------------------------------------------------------------------------


def _sim_threads(port: int) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(f"mexc-sim:{port}:")]


def test_start_stop_repeatedly_leaks_nothing() -> None:
    ports = []
    for _ in range(3):
        with SimulatorServer(n_symbols=3) as s, httpx.Client(base_url=s.url) as c:
            assert c.get("/api/v3/ping").status_code == 200
            s.faults.add("timeout:delay=30")
            with pytest.raises(httpx.ReadTimeout):
                httpx.get(f"{s.url}/api/v3/ping", timeout=0.2)
            ports.append(s.port)
            assert len(_sim_threads(s.port)) == 1  # the request still hanging in the fault
        assert not _sim_threads(s.port)
    with SimulatorServer(n_symbols=3, port=ports[-1]) as again:  # the port was released
        assert again.url.endswith(f":{ports[-1]}")
        assert httpx.get(f"{again.url}/api/v3/ping").status_code == 200
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", ports[-1])) != 0
    stopped = SimulatorServer(n_symbols=3)
    with pytest.raises(RuntimeError):
        _ = stopped.url
    stopped.stop()  # stopping a server that never started is harmless


def test_run_simulator_logs_url_and_stops_on_sigterm() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import logging; logging.basicConfig(level=logging.INFO);"
        "from app.exchange.simulator import run_simulator;"
        f"run_simulator('127.0.0.1', {port}, 8, 2, ['slow:delay=0.01'], 300)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert f"http://127.0.0.1:{port}" in line
        assert httpx.get(f"http://127.0.0.1:{port}/api/v3/ping").json() == {}
        info = httpx.get(f"http://127.0.0.1:{port}/_sim/info").json()
        assert (info["n_symbols"], info["seed"], info["weight_limit"]) == (8, 2, 300)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_simulator_rejects_bad_fault_spec() -> None:
    with pytest.raises(ValueError, match="count=x"):
        run_simulator("127.0.0.1", 0, 5, 1, ["slow:count=x"], 500)


def test_market_attribute_is_the_model(sim: SimulatorServer) -> None:
    assert isinstance(sim.market, SimulatedMarket)
    assert sim.market.usdt_symbols[:3] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
