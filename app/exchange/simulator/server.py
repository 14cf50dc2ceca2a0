"""HTTP layer of the MEXC simulator: MEXC spot v3 public endpoints plus a /_sim/ control API.

MEXC endpoints (GET): /api/v3/ping, time, defaultSymbols, exchangeInfo, ticker/24hr,
ticker/price, ticker/bookTicker, depth, klines, avgPrice, trades.

Control API (not MEXC):
    GET    /_sim/info            {"n_symbols", "seed", "weight_limit", "weight_used", "serverTime"}
    GET    /_sim/faults          {"faults": [fault, ...]}
    POST   /_sim/faults          body {"mode": ..., "count", "path", "retry_after", "delay",
                                 "status"} or {"spec": "rate_limit:count=3"}
                                 -> 201 {"fault": fault}; 400 {"error": "..."}
    DELETE /_sim/faults          {"cleared": n}
    DELETE /_sim/faults/<id>     {"removed": id}; 404 when unknown
    GET    /_sim/requests        {"total", "by_path": {path: n},
                                 "by_path_status": {path: {"200": n}}, "recent": [...]}
                                 (?recent=N, default 100)
    GET    /_sim/scenarios       {"scenarios": [scenario, ...]} (the latest one per symbol)
    POST   /_sim/scenarios       body {"symbol": "BTCUSDT", "price_factor": "0.8",
                                 "spread_factor": "5", "depth_factor": "1",
                                 "trend_pct_per_min": "0", "started_at_ms": ...} (all but
                                 symbol optional; decimals as strings or numbers) or
                                 {"spec": "BTCUSDT:price_factor=0.8"}
                                 -> 201 {"scenario": scenario}; 400 {"error": "..."}
    DELETE /_sim/scenarios       {"cleared": n} (symbols cleared)
    DELETE /_sim/scenarios/<sym> {"removed": sym}; 404 when it has none, 400 when unknown
    POST   /_sim/reset           {"ok": true}: faults, request log, weight window and
                                 scenarios cleared

A scenario is {"symbol", "price_factor", "spread_factor", "depth_factor", "trend_pct_per_min"
(decimal strings), "started_at_ms" (int)}; see scenarios.py for the semantics.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from types import FrameType, TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from app.exchange.simulator.faults import Fault, FaultInjector, wall_clock_ms
from app.exchange.simulator.market import SimulatedMarket, SimulatorError
from app.exchange.simulator.scenarios import (
    Scenario,
    parse_scenario_spec,
    scenario_from_dict,
    scenario_from_fields,
)

logger = logging.getLogger(__name__)

WEIGHT_WINDOW_S = 10.0
_INT_RE = re.compile(r"-?[0-9]{1,20}")
_API_PREFIX = "/api/v3/"

# Error codes. MEXC mirrors Binance's numbering: -1121 (invalid symbol/interval) and -1128
# are documented; -1102 is the code behind MEXC's "Mandatory parameter '...' was not sent,
# was empty/null, or malformed." message, -1100 is Binance's illegal-characters code, and
# -1003 is Binance's "too many requests" code (MEXC's 429 body is undocumented).
CODE_ILLEGAL_PARAM = -1100
CODE_MANDATORY_PARAM = -1102
CODE_BAD_COMBINATION = -1128
CODE_TOO_MANY_REQUESTS = -1003

_FORBIDDEN_HTML = (
    "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n"
    "<center><h1>403 Forbidden</h1></center>\r\n<hr><center>CloudFront</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_GATEWAY_HTML = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
)
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
}


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_dumps(data), status=status, mimetype="application/json", headers=headers)


def _mexc_error(status: int, code: int, msg: str) -> Response:
    return _json({"msg": msg, "code": code, "_extend": None}, status)


class ApiError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status

    def response(self) -> Response:
        return _mexc_error(self.status, self.code, self.msg)


class WeightWindow:
    """Request weight used in a rolling window; refuses what would exceed the limit."""

    def __init__(
        self,
        limit: int,
        window_s: float = WEIGHT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: deque[tuple[float, int]] = deque()
        self._used = 0

    def _expire(self, now: float) -> None:
        while self._entries and self._entries[0][0] <= now - self.window_s:
            self._used -= self._entries.popleft()[1]

    def acquire(self, weight: int) -> int | None:
        """Count `weight`; None when allowed, else the whole seconds to wait (>= 1)."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if self._used + weight <= self.limit:
                self._entries.append((now, weight))
                self._used += weight
                return None
            freed, wait = 0, self.window_s
            for t, w in self._entries:
                freed += w
                if self._used - freed + weight <= self.limit:
                    wait = t + self.window_s - now
                    break
            return max(1, math.ceil(wait))

    @property
    def used(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return self._used

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()
            self._used = 0


def _param(request: Request, name: str) -> str | None:
    value = request.args.get(name)
    return value if value not in (None, "") else None


def _required(request: Request, name: str) -> str:
    value = _param(request, name)
    if value is None:
        raise ApiError(
            CODE_MANDATORY_PARAM,
            f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
        )
    return value


def _int_param(request: Request, name: str, minimum: int = 0) -> int | None:
    value = _param(request, name)
    if value is None:
        return None
    value = value.strip()
    if not _INT_RE.fullmatch(value) or int(value) < minimum:
        raise ApiError(
            CODE_ILLEGAL_PARAM,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(value)


def _symbol_list(raw: str) -> list[str]:
    if raw.startswith("["):
        try:
            items = json.loads(raw)
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise ApiError(CODE_ILLEGAL_PARAM, "Illegal characters found in parameter 'symbols'.")
        return items
    return [s.strip() for s in raw.split(",") if s.strip()]


class SimulatorApp:
    """The WSGI application: MEXC endpoints with faults, weights and a request log."""

    def __init__(
        self,
        market: SimulatedMarket,
        faults: FaultInjector,
        weight_limit: int = 500,
        clock: Callable[[], int] = wall_clock_ms,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.market = market
        self.faults = faults
        self.weights = WeightWindow(weight_limit)
        self.clock = clock
        self.stop_event = stop_event or threading.Event()
        self._routes: dict[str, Callable[[Request, int], Any]] = {
            "ping": lambda r, now: {},
            "time": lambda r, now: {"serverTime": now},
            "defaultSymbols": self._default_symbols,
            "exchangeInfo": self._exchange_info,
            "ticker/24hr": self._ticker_24h,
            "ticker/price": self._ticker_price,
            "ticker/bookTicker": self._book_ticker,
            "depth": self._depth,
            "klines": self._klines,
            "avgPrice": self._avg_price,
            "trades": self._trades,
        }

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        if request.path == "/_sim" or request.path.startswith("/_sim/"):
            response = self._admin(request)
        else:
            response = self._api(request)
        return response(environ, start_response)

    # ---- MEXC API --------------------------------------------------------------------------

    def _api(self, request: Request) -> Response:
        path = request.path
        fault = self.faults.take(path)
        mode = fault.mode if fault else None
        weight = 0
        if fault is not None and mode in ("rate_limit", "server_error", "forbidden"):
            response = self._fault_response(fault)
        else:
            if fault is not None and mode in ("slow", "timeout"):
                self.stop_event.wait(fault.effective_delay)
            now = self.clock()
            if fault is not None and mode == "stale" and fault.frozen_at_ms is not None:
                now = fault.frozen_at_ms
            response, weight = self._dispatch(request, now)
            if mode == "malformed":
                body = response.get_data()
                response.set_data(body[: max(1, len(body) // 2)])
                response.status_code = 200
                response.mimetype = "application/json"
        self.faults.record(
            request.method,
            path,
            request.query_string.decode("latin-1"),
            response.status_code,
            mode,
            weight,
        )
        return response

    @staticmethod
    def _fault_response(fault: Fault) -> Response:
        if fault.mode == "rate_limit":
            response = _mexc_error(429, CODE_TOO_MANY_REQUESTS, "Too many requests.")
            response.headers["Retry-After"] = str(fault.retry_after)
            return response
        if fault.mode == "forbidden":
            return Response(_FORBIDDEN_HTML, status=fault.status or 403, mimetype="text/html")
        status = fault.effective_status or 503
        if status == 500:
            return _mexc_error(500, -1000, "Internal error; unable to process your request.")
        reason = _REASONS.get(status, "Server Error")
        return Response(
            _GATEWAY_HTML.format(status=status, reason=reason), status=status, mimetype="text/html"
        )

    def _dispatch(self, request: Request, now: int) -> tuple[Response, int]:
        path = request.path
        handler = (
            self._routes.get(path[len(_API_PREFIX) :]) if path.startswith(_API_PREFIX) else None
        )
        if handler is None:
            return _json({"code": 404, "msg": "Not Found"}, 404), 0
        if request.method not in ("GET", "HEAD"):
            return _json({"code": 405, "msg": "Method Not Allowed"}, 405), 0
        weight = self._weight(path, request)
        retry_after = self.weights.acquire(weight)
        if retry_after is not None:
            response = _mexc_error(429, CODE_TOO_MANY_REQUESTS, "Too many requests.")
            response.headers["Retry-After"] = str(retry_after)
            return response, 0
        try:
            return _json(handler(request, now)), weight
        except ApiError as exc:
            return exc.response(), weight
        except SimulatorError as exc:
            return _json(exc.body(), 400), weight

    @staticmethod
    def _weight(path: str, request: Request) -> int:
        endpoint = path[len(_API_PREFIX) :]
        has_symbol = _param(request, "symbol") is not None
        if endpoint == "exchangeInfo":
            return 10
        if endpoint == "trades":
            return 5
        if endpoint == "ticker/24hr":
            return 1 if has_symbol else 40
        if endpoint == "ticker/price":
            return 1 if has_symbol else 2
        return 1

    def _symbol(self, request: Request) -> str:
        symbol = _required(request, "symbol")
        self.market.spec(symbol)  # raises InvalidSymbolError
        return symbol

    def _default_symbols(self, request: Request, now: int) -> Any:
        return {"code": 200, "data": self.market.default_symbols(), "msg": None}

    def _exchange_info(self, request: Request, now: int) -> Any:
        single, many = _param(request, "symbol"), _param(request, "symbols")
        names = [single] if single is not None else (_symbol_list(many) if many else None)
        return self.market.exchange_info(names, now)

    def _per_symbol(self, request: Request, fn: Callable[[str, int], Any], now: int) -> Any:
        if _param(request, "symbol") is not None:
            return fn(self._symbol(request), now)
        return [fn(s, now) for s in self.market.symbols]

    def _ticker_24h(self, request: Request, now: int) -> Any:
        return self._per_symbol(request, self.market.ticker_24h, now)

    def _ticker_price(self, request: Request, now: int) -> Any:
        return self._per_symbol(request, self.market.ticker_price, now)

    def _book_ticker(self, request: Request, now: int) -> Any:
        return self._per_symbol(request, self.market.book_ticker, now)

    def _avg_price(self, request: Request, now: int) -> Any:
        return self.market.avg_price(self._symbol(request), now)

    def _depth(self, request: Request, now: int) -> Any:
        symbol = self._symbol(request)
        return self.market.depth(symbol, _int_param(request, "limit", 1), now)

    def _trades(self, request: Request, now: int) -> Any:
        symbol = self._symbol(request)
        return self.market.trades(symbol, _int_param(request, "limit", 1), now)

    def _klines(self, request: Request, now: int) -> Any:
        symbol = self._symbol(request)
        interval = _required(request, "interval")
        start = _int_param(request, "startTime")
        end = _int_param(request, "endTime")
        limit = _int_param(request, "limit", 1)
        if start is not None and end is not None and start > end:
            raise ApiError(CODE_BAD_COMBINATION, "Combination of optional parameters invalid.")
        return self.market.klines(symbol, interval, start, end, limit, now_ms=now)

    # ---- control API -----------------------------------------------------------------------

    def _admin(self, request: Request) -> Response:
        path, method = request.path.rstrip("/"), request.method
        try:
            if path == "/_sim/info" and method == "GET":
                return _json(self._info())
            if path == "/_sim/faults":
                if method == "GET":
                    return _json({"faults": [f.to_dict() for f in self.faults.list()]})
                if method == "POST":
                    data = request.get_json(force=True, silent=True)
                    if not isinstance(data, dict):
                        raise ValueError("body must be a JSON object")
                    fault = self.faults.add(data)
                    return _json({"fault": fault.to_dict()}, 201)
                if method == "DELETE":
                    return _json({"cleared": self.faults.clear()})
                return _json({"error": "method not allowed"}, 405)
            if path.startswith("/_sim/faults/") and method == "DELETE":
                fault_id = int(path.rsplit("/", 1)[1])
                if self.faults.remove(fault_id):
                    return _json({"removed": fault_id})
                return _json({"error": f"no fault {fault_id}"}, 404)
            if path == "/_sim/requests" and method == "GET":
                recent = int(request.args.get("recent", "100"))
                return _json(self.faults.requests_snapshot(recent))
            if path == "/_sim/scenarios" or path.startswith("/_sim/scenarios/"):
                return self._admin_scenarios(request, path, method)
            if path == "/_sim/reset" and method == "POST":
                self.faults.reset()
                self.weights.reset()
                self.market.clear_scenarios()
                return _json({"ok": True})
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({"error": f"unknown control endpoint {method} {request.path}"}, 404)

    def _admin_scenarios(self, request: Request, path: str, method: str) -> Response:
        if path == "/_sim/scenarios":
            if method == "GET":
                return _json({"scenarios": [s.to_dict() for s in self.market.scenarios()]})
            if method == "POST":
                data = request.get_json(force=True, silent=True)
                if not isinstance(data, dict):
                    raise ValueError("body must be a JSON object")
                scenario = self.market.apply_scenario(scenario_from_dict(data), self.clock())
                return _json({"scenario": scenario.to_dict()}, 201)
            if method == "DELETE":
                return _json({"cleared": self.market.clear_scenarios()})
            return _json({"error": "method not allowed"}, 405)
        symbol = path[len("/_sim/scenarios/") :]
        if method != "DELETE":
            return _json({"error": "method not allowed"}, 405)
        if not self.market.has_symbol(symbol):
            raise ValueError(f"unknown symbol {symbol!r}")
        if self.market.clear_scenarios(symbol):
            return _json({"removed": symbol})
        return _json({"error": f"no scenario for {symbol}"}, 404)

    def _info(self) -> dict[str, Any]:
        return {
            "n_symbols": self.market.n_symbols,
            "seed": self.market.seed,
            "weight_limit": self.weights.limit,
            "weight_used": self.weights.used,
            "serverTime": self.clock(),
        }


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
    """The simulator on a background thread; port=0 picks a free port."""

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
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._registry = _ConnectionRegistry()

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

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return f"http://{self.host}:{self.port}"

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
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"mexc-sim:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stop_event.set()  # wakes requests hanging in slow/timeout faults
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


def run_simulator(
    host: str = "127.0.0.1",
    port: int = 8000,
    n_symbols: int = 50,
    seed: int = 1,
    faults: list[str] | None = None,
    weight_limit: int = 500,
    scenarios: list[str] | None = None,
) -> None:
    """Serve the simulator until SIGINT/SIGTERM. Bad fault or scenario specs (and scenarios
    of unknown symbols) raise ValueError first."""
    server = SimulatorServer(
        n_symbols, seed, host, port, weight_limit, faults or (), scenarios=scenarios or ()
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
                "MEXC simulator listening on %s (%d USDT symbols, seed %d, weight limit %d/10s%s)",
                server.url,
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
