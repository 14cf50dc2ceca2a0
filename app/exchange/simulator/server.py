"""The simulator as a server: the HTTP side (http_app.py) and the WebSocket side (ws_server.py)
of one SimulatedMarket, each on background threads.

    with SimulatorServer(n_symbols=50, seed=1) as sim:
        sim.url      # http://127.0.0.1:PORT  (MEXC REST + /_sim control API)
        sim.ws_url   # ws://127.0.0.1:WS_PORT/ws  (MEXC spot streams)

`cdb mexc-sim` runs run_simulator() until SIGINT/SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType, TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from app.exchange.simulator.faults import Fault, FaultInjector, wall_clock_ms
from app.exchange.simulator.http_app import SimulatorApp
from app.exchange.simulator.market import SimulatedMarket
from app.exchange.simulator.scenarios import (
    Scenario,
    parse_scenario_spec,
    scenario_from_fields,
)
from app.exchange.simulator.ws_server import WsServer, WsSettings

logger = logging.getLogger(__name__)

PREFETCH_CHUNK = 50  # symbols between pauses
PREFETCH_PAUSE_S = 0.005
PREFETCH_PERIOD_S = 5.0


class _Handler(WSGIRequestHandler):
    """Quiet request handler that registers its connection so stop() can close it."""

    def handle(self) -> None:
        registry: _ConnectionRegistry | None = getattr(self.server, "sim_registry", None)
        threading.current_thread().name = f"mexc-sim:{self.server.port}:request"
        if registry is not None:
            registry.add(self.connection)
        try:
            super().handle()
        finally:
            if registry is not None:
                registry.discard(self.connection)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:
        level = logging.WARNING if type == "error" else logging.DEBUG
        logger.log(level, "%s " + message, self.address_string(), *args)


class _ConnectionRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}

    def add(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns[conn] = threading.current_thread()

    def discard(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.pop(conn, None)

    def close_all(self, timeout: float = 2.0) -> None:
        with self._lock:
            items = list(self._conns.items())
        for conn, _ in items:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in items:
            thread.join(max(0.0, deadline - time.monotonic()))


class SimulatorServer:
    """The simulator on background threads; port=0 and ws_port=0 pick free ports."""

    def __init__(
        self,
        n_symbols: int = 50,
        seed: int = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        weight_limit: int = 500,
        faults: Iterable[str | Fault] = (),
        clock: Callable[[], int] | None = None,
        scenarios: Iterable[str | Scenario] = (),
        ws_port: int = 0,
        ws_settings: WsSettings | None = None,
        prefetch: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.market = SimulatedMarket(n_symbols, seed)
        self.clock = clock or wall_clock_ms
        self.faults = FaultInjector(self.clock)
        for fault in faults:
            self.faults.add(fault)
        parsed = [parse_scenario_spec(s) if isinstance(s, str) else s for s in scenarios]
        if parsed:
            started_at = self.clock()
            for scenario in parsed:
                self.market.apply_scenario(scenario, started_at)
        self._stop_event = threading.Event()
        self.app = SimulatorApp(
            self.market, self.faults, weight_limit, self.clock, self._stop_event
        )
        self.ws = WsServer(self.market, self.faults, self.clock, host, ws_port, ws_settings)
        self.app.ws_url = lambda: self.ws_url if self.running else None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._registry = _ConnectionRegistry()
        self._prefetch = prefetch
        self._prefetcher: threading.Thread | None = None

    # ---- scenarios -------------------------------------------------------------------------

    def set_scenario(self, symbol: str, **fields: Any) -> Scenario:
        """Override `symbol` from now on (or from started_at_ms=...): price_factor,
        spread_factor, depth_factor, trend_pct_per_min. ValueError names a bad field or an
        unknown symbol."""
        return self.market.apply_scenario(scenario_from_fields(symbol, **fields), self.clock())

    def add_scenario(self, scenario: str | Scenario) -> Scenario:
        """Apply a spec string ("BTCUSDT:price_factor=0.8") or a Scenario from now on."""
        if isinstance(scenario, str):
            scenario = parse_scenario_spec(scenario)
        return self.market.apply_scenario(scenario, self.clock())

    def clear_scenarios(self, symbol: str | None = None) -> int:
        """Remove every scenario, or one symbol's; returns the number of symbols cleared."""
        return self.market.clear_scenarios(symbol)

    def scenarios(self) -> list[Scenario]:
        return self.market.scenarios()

    # ---- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return self.ws.url

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> SimulatorServer:
        if self._server is not None:
            return self
        self._stop_event.clear()
        server = make_server(
            self.host, self.port, self.app, threaded=True, request_handler=_Handler
        )
        server.sim_registry = self._registry  # type: ignore[attr-defined]
        self.port = server.socket.getsockname()[1]
        try:
            self.ws.start()
        except BaseException:
            server.server_close()
            raise
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"mexc-sim:{self.port}",
            daemon=True,
        )
        self._thread.start()
        if self._prefetch:
            self._prefetcher = threading.Thread(
                target=self._prefetch_loop, name=f"mexc-sim:{self.port}-prefetch", daemon=True
            )
            self._prefetcher.start()
        return self

    def _prefetch_loop(self) -> None:
        """Keep every symbol's 24h window and next hour blocks computed, in small chunks so
        requests keep their share of the interpreter."""
        while not self._stop_event.is_set():
            symbols = self.market.symbols
            for i in range(0, len(symbols), PREFETCH_CHUNK):
                if self._stop_event.wait(PREFETCH_PAUSE_S):
                    return
                now = self.app.market_now()
                for symbol in symbols[i : i + PREFETCH_CHUNK]:
                    self.market.prefetch(symbol, now)
            self._stop_event.wait(PREFETCH_PERIOD_S)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stop_event.set()  # wakes requests hanging in slow/timeout faults
        if self._prefetcher is not None:
            self._prefetcher.join(10)
            self._prefetcher = None
        self.ws.stop()
        server.shutdown()
        self._registry.close_all()
        server.server_close()
        if thread is not None:
            thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def run_simulator(
    host: str = "127.0.0.1",
    port: int = 8000,
    n_symbols: int = 50,
    seed: int = 1,
    faults: list[str] | None = None,
    weight_limit: int = 500,
    scenarios: list[str] | None = None,
    ws_port: int | None = None,
) -> None:
    """Serve the simulator until SIGINT/SIGTERM. The WebSocket side listens on ws_port:
    None means port + 1 (any free port when that one is taken or port is 0), 0 any free port.
    Bad fault or scenario specs (and scenarios of unknown symbols) raise ValueError first."""
    if ws_port is None:
        ws_port = port + 1 if port and port < 65535 and _port_free(host, port + 1) else 0
    server = SimulatorServer(
        n_symbols,
        seed,
        host,
        port,
        weight_limit,
        faults or (),
        scenarios=scenarios or (),
        ws_port=ws_port,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
    try:
        with server:
            logger.info(
                "MEXC simulator listening on %s and %s (%d USDT symbols, seed %d, "
                "weight limit %d/10s%s)",
                server.url,
                server.ws_url,
                n_symbols,
                seed,
                weight_limit,
                f", faults: {'; '.join(faults)}" if faults else "",
            )
            if scenarios:
                logger.info("MEXC simulator scenarios: %s", "; ".join(scenarios))
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("MEXC simulator stopped")
