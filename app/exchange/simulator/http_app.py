"""The simulator's WSGI application: MEXC's public REST endpoints plus the /_sim control API.

MEXC endpoints (GET): /api/v3/ping, time, defaultSymbols, exchangeInfo, ticker/24hr,
ticker/price, ticker/bookTicker, depth, klines, avgPrice, trades, aggTrades; and, for clients
such as ccxt that load futures markets too, /api/v1/contract/detail (no contracts) and
/api/v1/contract/ping.

Errors carry MEXC's codes: -1121 invalid symbol or interval, -1102 missing parameter,
700008 illegal characters in a parameter, -1128 bad parameter combination, 429 too many
requests (HTTP 429 with Retry-After).

Control API (not MEXC):
    GET    /_sim/info            {"n_symbols", "seed", "weight_limit", "weight_used", "serverTime",
                                 "ws_url"}
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
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from app.exchange.simulator.faults import REST_MODES, Fault, FaultInjector, wall_clock_ms
from app.exchange.simulator.market import SimulatedMarket, SimulatorError
from app.exchange.simulator.scenarios import scenario_from_dict

WEIGHT_WINDOW_S = 10.0
_INT_RE = re.compile(r"-?[0-9]{1,20}")

CODE_ILLEGAL_PARAM = 700008
CODE_MANDATORY_PARAM = -1102
CODE_BAD_COMBINATION = -1128
CODE_TOO_MANY_REQUESTS = 429
CODE_INTERNAL = -1000

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


def _too_many(retry_after: int) -> Response:
    response = _mexc_error(429, CODE_TOO_MANY_REQUESTS, "Too Many Requests")
    response.headers["Retry-After"] = str(retry_after)
    return response


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
        self.ws_url: Callable[[], str | None] = lambda: None
        v3 = "/api/v3/"
        self._routes: dict[str, Callable[[Request, int], Any]] = {
            v3 + "ping": lambda r, now: {},
            v3 + "time": lambda r, now: {"serverTime": now},
            v3 + "defaultSymbols": self._default_symbols,
            v3 + "exchangeInfo": self._exchange_info,
            v3 + "ticker/24hr": self._ticker_24h,
            v3 + "ticker/price": self._ticker_price,
            v3 + "ticker/bookTicker": self._book_ticker,
            v3 + "depth": self._depth,
            v3 + "klines": self._klines,
            v3 + "avgPrice": self._avg_price,
            v3 + "trades": self._trades,
            v3 + "aggTrades": self._agg_trades,
            "/api/v1/contract/detail": lambda r, now: {"success": True, "code": 0, "data": []},
            "/api/v1/contract/ping": lambda r, now: {"success": True, "code": 0, "data": now},
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
        fault = self.faults.take(path, REST_MODES)
        mode = fault.mode if fault else None
        weight = 0
        if fault is not None and mode in ("rate_limit", "server_error", "forbidden"):
            response = self._fault_response(fault)
        else:
            if fault is not None and mode in ("slow", "timeout"):
                self.stop_event.wait(fault.effective_delay)
            now = self.market_now(fault)
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

    def market_now(self, fault: Fault | None = None) -> int:
        """The market's clock: frozen while a `stale` fault applies."""
        if fault is not None and fault.mode == "stale" and fault.frozen_at_ms is not None:
            return fault.frozen_at_ms
        return self.clock()

    @staticmethod
    def _fault_response(fault: Fault) -> Response:
        if fault.mode == "rate_limit":
            return _too_many(fault.retry_after)
        if fault.mode == "forbidden":
            return Response(_FORBIDDEN_HTML, status=fault.status or 403, mimetype="text/html")
        status = fault.effective_status or 503
        if status == 500:
            return _mexc_error(
                500, CODE_INTERNAL, "Internal error; unable to process your request."
            )
        reason = _REASONS.get(status, "Server Error")
        return Response(
            _GATEWAY_HTML.format(status=status, reason=reason), status=status, mimetype="text/html"
        )

    def _dispatch(self, request: Request, now: int) -> tuple[Response, int]:
        handler = self._routes.get(request.path)
        if handler is None:
            return _json({"code": 404, "msg": "Not Found"}, 404), 0
        if request.method not in ("GET", "HEAD"):
            return _json({"code": 405, "msg": "Method Not Allowed"}, 405), 0
        weight = self._weight(request)
        retry_after = self.weights.acquire(weight)
        if retry_after is not None:
            return _too_many(retry_after), 0
        try:
            return _json(handler(request, now)), weight
        except ApiError as exc:
            return exc.response(), weight
        except SimulatorError as exc:
            return _json(exc.body(), 400), weight

    @staticmethod
    def _weight(request: Request) -> int:
        endpoint = request.path.rsplit("/api/v3/", 1)[-1]
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

    def _agg_trades(self, request: Request, now: int) -> Any:
        symbol = self._symbol(request)
        start, end = _int_param(request, "startTime"), _int_param(request, "endTime")
        if start is not None and end is not None and start > end:
            raise ApiError(CODE_BAD_COMBINATION, "Combination of optional parameters invalid.")
        limit = _int_param(request, "limit", 1)
        return self.market.agg_trades(symbol, start, end, limit, now)

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
            "ws_url": self.ws_url(),
        }
