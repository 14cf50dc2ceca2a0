"""Synchronous client for MEXC's public spot v3 REST API.

Thread-safe: one instance can serve a ThreadPoolExecutor fetching many symbols at once
(httpx.Client pools connections across threads; the WeightBudget is locked).
"""

from __future__ import annotations

import json
import logging
import math
import random as _random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, NoReturn, Self, TypeVar

import httpx

from app.domain.market import KLINE_INTERVALS, BookTicker, Kline, Market, OrderBook, Ticker24h
from app.exchange import parsing
from app.exchange.errors import (
    BadRequestError,
    ExchangeConnectionError,
    ExchangeError,
    ExchangeTimeoutError,
    ExchangeUnavailableError,
    FirewallError,
    InvalidIntervalError,
    InvalidSymbolError,
    MalformedResponseError,
    RateLimitedError,
    RequestBudgetExceededError,
    TemporaryExchangeError,
)
from app.exchange.ratelimit import WeightBudget

logger = logging.getLogger(__name__)

T = TypeVar("T")

USER_AGENT = "claire-de-binaire/0.1"
RETRY_AFTER_CAP = 120.0  # seconds; longer Retry-After values mean a ban, not a pause
KLINES_MAX_LIMIT = 1000
DEPTH_MAX_LIMIT = 5000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# MEXC request weights (MEXC.md); tickers without a symbol cost 40.
WEIGHTS: dict[str, int] = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 10,
    "/api/v3/depth": 1,
    "/api/v3/klines": 1,
    "/api/v3/ticker/24hr": 1,
    "/api/v3/ticker/bookTicker": 1,
}
ALL_TICKERS_WEIGHT = 40

INVALID_SYMBOL_CODES = frozenset({-1121, 10007, 30014, 30021, 730001})
INVALID_INTERVAL_MESSAGE = "Invalid interval."
# Error codes in a JSON body that mean "try again later" rather than "bad request".
RATE_LIMIT_CODES = frozenset({429, -1003})
UNAVAILABLE_CODES = frozenset({500, 503, 504, -1001, -1004, -1007, -1008})


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """Reported to ``on_retry`` before the client sleeps and tries a request again."""

    path: str
    attempt: int  # 1 for the first retry
    error: str  # exception class name
    message: str
    delay: float  # seconds about to be slept


class MexcClient:
    """MEXC spot v3 public endpoints, returning domain objects with exact Decimals."""

    def __init__(
        self,
        base_url: str = "https://api.mexc.com",
        *,
        timeout: float = 10.0,
        max_retries: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        budget: WeightBudget | None = None,
        budget_max_wait: float = 30.0,
        on_retry: Callable[[RetryEvent], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must not be negative, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.budget = budget if budget is not None else WeightBudget()
        self.budget_max_wait = budget_max_wait
        self._on_retry = on_retry
        self._sleep = sleep
        # Seconds spent waiting for MEXC's answers (request sent → body read), all requests
        # of this client: what a run waited on the exchange, as opposed to its own work.
        self.http_seconds = 0.0
        self._http_seconds_lock = threading.Lock()
        self._random = random
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=transport,
            follow_redirects=False,
        )

    # --- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    @contextmanager
    def reporting_retries_to(self, on_retry: Callable[[RetryEvent], None]) -> Iterator[Self]:
        """Report retries to `on_retry` for the duration (one run of a long-lived client)."""
        previous, self._on_retry = self._on_retry, on_retry
        try:
            yield self
        finally:
            self._on_retry = previous

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- endpoints -------------------------------------------------------------------

    def ping(self) -> None:
        self._get("/api/v3/ping", {}, _expect_object)

    def server_time(self) -> datetime:
        return self._get("/api/v3/time", {}, parsing.parse_server_time)

    def exchange_info(self, symbols: Sequence[str] | None = None) -> list[Market]:
        """Trading rules for all markets, or only for ``symbols``."""
        params: dict[str, str] = {}
        if symbols is not None:
            wanted = [_symbol(s) for s in ([symbols] if isinstance(symbols, str) else symbols)]
            if not wanted:
                return []
            if len(wanted) == 1:
                params["symbol"] = wanted[0]
            else:
                params["symbols"] = ",".join(wanted)
        return self._get("/api/v3/exchangeInfo", params, parsing.parse_exchange_info)

    def ticker_24h(self, symbol: str) -> Ticker24h:
        symbol = _symbol(symbol)
        tickers = self._get("/api/v3/ticker/24hr", {"symbol": symbol}, parsing.parse_tickers)
        return _only(tickers, symbol, "/api/v3/ticker/24hr")

    def tickers_24h(self) -> list[Ticker24h]:
        """Every symbol's 24h ticker in one request (weight 40)."""
        return self._get(
            "/api/v3/ticker/24hr", {}, parsing.parse_tickers, weight=ALL_TICKERS_WEIGHT
        )

    def book_ticker(self, symbol: str) -> BookTicker:
        symbol = _symbol(symbol)
        books = self._get(
            "/api/v3/ticker/bookTicker", {"symbol": symbol}, parsing.parse_book_tickers
        )
        return _only(books, symbol, "/api/v3/ticker/bookTicker")

    def book_tickers(self) -> list[BookTicker]:
        return self._get("/api/v3/ticker/bookTicker", {}, parsing.parse_book_tickers)

    def depth(self, symbol: str, limit: int = 100) -> OrderBook:
        symbol = _symbol(symbol)
        _check_limit(limit, DEPTH_MAX_LIMIT)
        return self._get(
            "/api/v3/depth",
            {"symbol": symbol, "limit": limit},
            lambda payload: parsing.parse_depth(symbol, payload, datetime.now(UTC)),
        )

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        limit: int = 500,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Kline]:
        """Candles, oldest first. ``end`` is exclusive; MEXC may return fewer than ``limit``."""
        symbol = _symbol(symbol)
        path = "/api/v3/klines"
        if interval not in KLINE_INTERVALS:
            raise InvalidIntervalError(
                f"kline interval {interval!r} is not accepted by MEXC (checked before sending)",
                path=path,
                code=-1121,
                exchange_message=INVALID_INTERVAL_MESSAGE,
            )
        _check_limit(limit, KLINES_MAX_LIMIT)
        params: dict[str, str | int] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start is not None:
            params["startTime"] = _to_millis(start, "start")
        if end is not None:
            params["endTime"] = _to_millis(end, "end")
        if start is not None and end is not None and end < start:
            raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
        return self._get(path, params, parsing.parse_klines)

    # --- request machinery -----------------------------------------------------------

    def _get(
        self,
        path: str,
        params: Mapping[str, str | int],
        parse: Callable[[Any], T],
        *,
        weight: int | None = None,
    ) -> T:
        weight = WEIGHTS[path] if weight is None else weight
        attempt = 0
        while True:
            try:
                return self._attempt(path, params, parse, weight)
            except RequestBudgetExceededError:
                raise
            except TemporaryExchangeError as error:
                if attempt >= self.max_retries:
                    raise
                attempt += 1
                delay = self._retry_delay(attempt, error)
                self._report_retry(path, attempt, error, delay)
                self._sleep(delay)

    def _attempt(
        self, path: str, params: Mapping[str, str | int], parse: Callable[[Any], T], weight: int
    ) -> T:
        try:
            self.budget.acquire(weight, self.budget_max_wait)
        except RequestBudgetExceededError as exc:
            raise RequestBudgetExceededError(
                exc.message, wait_needed=exc.wait_needed, path=path
            ) from exc
        sent = time.perf_counter()
        try:
            response = self._http.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise ExchangeTimeoutError(
                f"no answer within the timeout ({type(exc).__name__})", path=path
            ) from exc
        except httpx.DecodingError as exc:
            raise MalformedResponseError(f"undecodable body: {exc}", path=path) from exc
        except httpx.RequestError as exc:
            raise ExchangeConnectionError(
                f"request failed ({type(exc).__name__}: {exc})", path=path
            ) from exc
        finally:
            with self._http_seconds_lock:
                self.http_seconds += time.perf_counter() - sent

        status = response.status_code
        if 200 <= status < 300:
            payload = _decode(response, path)
            _raise_for_error_body(payload, path, params, status)
            try:
                return parse(payload)
            except parsing.ParseError as exc:
                raise MalformedResponseError(
                    f"answer not in the documented shape: {exc}", path=path, http_status=status
                ) from exc
        _raise_for_status(response, path, params)

    def _retry_delay(self, attempt: int, error: TemporaryExchangeError) -> float:
        # Full jitter under an exponential ceiling: backoff_base for the first retry, doubling.
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay = self._random() * ceiling
        retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
        return delay

    def _report_retry(
        self, path: str, attempt: int, error: TemporaryExchangeError, delay: float
    ) -> None:
        message = str(error)
        retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
        note = ""
        if retry_after is not None and retry_after > RETRY_AFTER_CAP:
            note = f" (Retry-After {retry_after:g} s capped at {RETRY_AFTER_CAP:g} s)"
        elif retry_after is not None and retry_after > self.backoff_max:
            note = f" (honouring Retry-After {retry_after:g} s beyond backoff_max)"
        logger.warning(
            "MEXC %s failed: %s: %s; retry %d of %d in %.2f s%s",
            path,
            type(error).__name__,
            message,
            attempt,
            self.max_retries,
            delay,
            note,
            extra={
                "path": path,
                "attempt": attempt,
                "max_retries": self.max_retries,
                "delay": delay,
                "error": type(error).__name__,
                "error_message": message,
            },
        )
        if self._on_retry is not None:
            self._on_retry(
                RetryEvent(
                    path=path,
                    attempt=attempt,
                    error=type(error).__name__,
                    message=message + note,
                    delay=delay,
                )
            )


# --- helpers ---------------------------------------------------------------------------


def _symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValueError(f"symbol must be a non-empty string, got {symbol!r}")
    return symbol.strip().upper()


def _check_limit(limit: int, maximum: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise ValueError(f"limit must be an integer from 1 to {maximum}, got {limit!r}")


def _to_millis(moment: datetime, name: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {moment.isoformat()}")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _expect_object(payload: object) -> None:
    if not isinstance(payload, Mapping):
        raise parsing.ParseError("ping", payload, "expected a JSON object")


def _only(items: list[T], symbol: str, path: str) -> T:
    for item in items:
        if getattr(item, "symbol", None) == symbol:
            return item
    raise MalformedResponseError(f"answer does not contain {symbol}", path=path, http_status=200)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"non-finite number {name} in JSON")


def _loads(content: bytes) -> Any:
    return json.loads(content, parse_float=Decimal, parse_int=int, parse_constant=_reject_constant)


def _excerpt(content: bytes, limit: int = 200) -> str:
    text = content[:limit].decode("utf-8", errors="replace")
    return text + ("..." if len(content) > limit else "")


def _decode(response: httpx.Response, path: str) -> Any:
    try:
        return _loads(response.content)
    except (ValueError, RecursionError) as exc:
        raise MalformedResponseError(
            f"body is not JSON: {_excerpt(response.content)!r}",
            path=path,
            http_status=response.status_code,
        ) from exc


def _error_fields(payload: object) -> tuple[int | None, str | None]:
    """MEXC's ``{"code": ..., "msg": ...}`` error body, or (None, None)."""
    if not isinstance(payload, Mapping):
        return None, None
    raw_code, raw_msg = payload.get("code"), payload.get("msg")
    code: int | None = None
    if isinstance(raw_code, int) and not isinstance(raw_code, bool):
        code = raw_code
    elif isinstance(raw_code, str | Decimal):
        try:
            code = int(raw_code)
        except (ValueError, ArithmeticError):
            code = None
    msg = raw_msg if isinstance(raw_msg, str) else None
    return code, msg


def _raise_for_error_body(
    payload: object, path: str, params: Mapping[str, str | int], status: int
) -> None:
    # A 200 carrying {"code": -1121, "msg": ...} instead of data is an error in disguise.
    if not isinstance(payload, Mapping) or "code" not in payload or "msg" not in payload:
        return
    code, msg = _error_fields(payload)
    if code in (None, 0, 200):
        return
    raise _classify(status, code, msg, path, params)


def _raise_for_status(
    response: httpx.Response, path: str, params: Mapping[str, str | int]
) -> NoReturn:
    status = response.status_code
    try:
        code, msg = _error_fields(_loads(response.content))
    except (ValueError, RecursionError):
        code, msg = None, None
    if status == 429:
        raise RateLimitedError(
            "MEXC rate limit hit",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            path=path,
            http_status=status,
            code=code,
            exchange_message=msg,
        )
    if status in (403, 418):
        raise FirewallError(
            "MEXC's web application firewall refused the request",
            path=path,
            http_status=status,
            code=code,
            exchange_message=msg,
        )
    if status >= 500:
        raise ExchangeUnavailableError(
            "MEXC answered with a server error",
            path=path,
            http_status=status,
            code=code,
            exchange_message=msg,
        )
    if status == 408:
        raise ExchangeTimeoutError(
            "MEXC timed out the request", path=path, http_status=status, code=code
        )
    if 400 <= status < 500:
        if code is None and msg is None:
            raise BadRequestError(
                f"MEXC rejected the request: {_excerpt(response.content)!r}",
                path=path,
                http_status=status,
            )
        raise _classify(status, code, msg, path, params)
    raise MalformedResponseError(
        f"unexpected HTTP status {status}: {_excerpt(response.content)!r}",
        path=path,
        http_status=status,
    )


def _classify(
    status: int, code: int | None, msg: str | None, path: str, params: Mapping[str, str | int]
) -> ExchangeError:
    fields: dict[str, Any] = {
        "path": path,
        "http_status": status,
        "code": code,
        "exchange_message": msg,
    }
    if code in RATE_LIMIT_CODES:
        return RateLimitedError("MEXC rate limit hit", **fields)
    if code in UNAVAILABLE_CODES:
        return ExchangeUnavailableError("MEXC reported an internal error", **fields)
    if code in INVALID_SYMBOL_CODES:
        lowered = (msg or "").lower()
        is_interval = "interval" in lowered or (
            code == -1121 and "symbol" not in lowered and "interval" in params
        )
        if is_interval:
            interval = params.get("interval")
            return InvalidIntervalError(f"MEXC rejected kline interval {interval!r}", **fields)
        symbol = params.get("symbol") or params.get("symbols")
        return InvalidSymbolError(f"MEXC does not know symbol {symbol!r}", **fields)
    return BadRequestError("MEXC rejected the request", **fields)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; an HTTP-date or garbage gives None."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds
