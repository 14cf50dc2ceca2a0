"""Hostile exchange data: a tiny HTTP proxy in front of the simulator that adds markets and
24h tickers with hostile symbol names to MEXC's answers (the simulator serves only its own,
well-formed symbols).

The added entries are copies of a real symbol's entries with only the name changed, so a
name is the only thing wrong with them. `BAD_FIELDS` are entries whose symbol field is not a
string at all."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterable
from typing import Any

import httpx
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

HOSTILE_NAMES = (
    "btcusdt",
    "BTC/USDT",
    "BTC-USDT",
    "<script>alert(1)</script>USDT",
    "X'; DROP TABLE orders;--USDT",
    "A" * 5000 + "USDT",
    "\u0412\u0422\u0421USDT",  # Cyrillic look-alikes of BTC
    "BTCUSDT\u0000",
    "../../etc/passwdUSDT",
    'EVILUSDT\n{"level": "CRITICAL", "message": "forged"}',
    "\U0001f680USDT",
    "${jndi:ldap://x}USDT",
    "E",
)
# A second, conflicting entry for a real symbol (at a bogus price): by the same name, or by
# one that becomes it once trimmed.
SHADOW_NAMES = (" BTCUSDT", "ETHUSDT ", "SOLUSDT")
BOGUS_PRICE = "0.01"
BAD_FIELDS: tuple[Any, ...] = (None, 12345, {"$ne": 1}, [], "")


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class HostileProxy:
    """Forwards everything to `upstream`; while `names` is not empty, exchangeInfo and
    ticker/24hr answers carry the extra entries."""

    def __init__(self, upstream: str, template: str = "BTCUSDT") -> None:
        self.upstream = upstream.rstrip("/")
        self.template = template
        self.names: tuple[Any, ...] = ()
        self.served = 0
        self._http = httpx.Client(base_url=self.upstream, timeout=30)
        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.socket.getsockname()[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def inject(self, names: Iterable[Any]) -> None:
        self.names = tuple(names)

    def __call__(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        upstream = self._http.request(
            request.method,
            request.path,
            params=list(request.args.items(multi=True)),
            content=request.get_data(),
            headers={"Content-Type": request.content_type or "application/json"},
        )
        body = upstream.content
        if self.names and upstream.status_code == 200:
            if request.path == "/api/v3/exchangeInfo" and not request.args:
                body = self._add(body, "symbols")
            elif request.path == "/api/v3/ticker/24hr" and "symbol" not in request.args:
                body = self._add(body, None)
        headers = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() in ("content-type", "retry-after")
        }
        return Response(body, status=upstream.status_code, headers=headers)(environ, start_response)

    def _add(self, body: bytes, key: str | None) -> bytes:
        try:
            payload = json.loads(body)
        except ValueError:
            return body  # a malformed answer (a simulator fault) passes as it is
        entries = payload[key] if key else payload
        template = next(e for e in entries if e.get("symbol") == self.template)
        for name in self.names:
            extra = copy.deepcopy(template)
            extra["symbol"] = name
            if key:  # a market: its base asset named alike
                base = name[:-4] if isinstance(name, str) and name.endswith("USDT") else name
                extra["baseAsset"] = base
            if name in SHADOW_NAMES:
                extra["lastPrice"] = BOGUS_PRICE
            entries.append(extra)
        self.served += 1
        return json.dumps(payload).encode()

    def __enter__(self) -> HostileProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()
