import logging
import pickle
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from app.exchange import (
    BadRequestError,
    ExchangeConnectionError,
    ExchangeError,
    ExchangeTimeoutError,
    ExchangeUnavailableError,
    FirewallError,
    InvalidIntervalError,
    InvalidSymbolError,
    MalformedResponseError,
    MexcClient,
    PermanentExchangeError,
    RateLimitedError,
    RequestBudgetExceededError,
    RetryEvent,
    TemporaryExchangeError,
    WeightBudget,
)
from app.exchange.client import parse_retry_after

pytestmark = pytest.mark.unit

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]

KLINES_BODY = (
    b'[[1640804880000,"47482.36","47482.36","47416.57","47436.1","0.00001234",1640804940000,'
    b'"168387.3"],["1640804940000",47436.10,47500,47400.5,47480,1.5,"1640805000000",null]]'
)


def ok(body: bytes | str = b"{}", status: int = 200, **headers: str) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return httpx.Response(status, content=content, headers=headers)


def error(status: int, code: int | None = None, msg: str | None = None) -> httpx.Response:
    if code is None:
        return httpx.Response(status, content=b"<html>nope</html>")
    return httpx.Response(status, json={"msg": msg, "code": code, "_extend": None})


class FakeMexc:
    """A MockTransport handler replaying scripted replies; the last one repeats."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, httpx.Response):
            return reply
        return reply(request)


class Harness:
    def __init__(self, *replies: Reply, **options: Any) -> None:
        self.mexc = FakeMexc(*replies)
        self.sleeps: list[float] = []
        self.events: list[RetryEvent] = []
        self.now = 0.0
        self.budget = options.pop("budget", None) or WeightBudget(
            250, 10.0, clock=lambda: self.now, sleep=self._budget_sleep
        )
        self.budget_sleeps: list[float] = []
        options.setdefault("random", lambda: 1.0)
        self.client = MexcClient(
            "https://mexc.test",
            transport=httpx.MockTransport(self.mexc),
            sleep=self.sleeps.append,
            on_retry=self.events.append,
            budget=self.budget,
            **options,
        )

    def _budget_sleep(self, seconds: float) -> None:
        self.budget_sleeps.append(seconds)
        self.now += seconds

    @property
    def requests(self) -> list[httpx.Request]:
        return self.mexc.requests


# --- happy paths -----------------------------------------------------------------------


def test_klines_request_and_exact_decimals() -> None:
    h = Harness(ok(KLINES_BODY))
    start = datetime(2021, 12, 29, 19, 8, tzinfo=UTC)
    end = datetime(2021, 12, 29, 20, 0, 0, 999999, tzinfo=UTC)
    klines = h.client.klines("btcusdt", "1m", limit=2, start=start, end=end)

    request = h.requests[0]
    assert request.url.path == "/api/v3/klines"
    assert dict(request.url.params) == {
        "symbol": "BTCUSDT",
        "interval": "1m",
        "limit": "2",
        "startTime": "1640804880000",
        "endTime": "1640808000999",
    }
    assert request.headers["User-Agent"] == "claire-de-binaire/0.1"
    assert len(klines) == 2
    assert format(klines[0].volume, "f") == "0.00001234"
    assert format(klines[1].open, "f") == "47436.10"
    assert isinstance(klines[1].high, Decimal)
    assert klines[1].quote_volume is None
    assert klines[1].open_time == datetime(2021, 12, 29, 19, 9, tzinfo=UTC)
    assert h.sleeps == []


def test_other_endpoints() -> None:
    ticker = (
        b'{"symbol":"BTCUSDT","lastPrice":"0.00001234","priceChangePercent":"0.0173",'
        b'"bidQty":"","quoteVolume":null,"openTime":"1710328232149","closeTime":1710414632149}'
    )
    book = b'{"symbol":"BTCUSDT","bidPrice":"1.1","bidQty":"2","askPrice":"1.2","askQty":"3"}'
    depth = b'{"lastUpdateId":"20453289489","bids":[["15.00000","49999.00000"]],"asks":[]}'

    def route(request: httpx.Request) -> httpx.Response:
        return {
            "/api/v3/ping": ok(b"{}"),
            "/api/v3/time": ok(b'{"serverTime": 1645539742000}'),
            "/api/v3/ticker/24hr": ok(ticker if "symbol" in request.url.params else b"[]"),
            "/api/v3/ticker/bookTicker": ok(book),
            "/api/v3/depth": ok(depth),
        }[request.url.path]

    h = Harness(route)
    assert h.client.ping() is None
    assert h.client.server_time() == datetime(2022, 2, 22, 14, 22, 22, tzinfo=UTC)
    t = h.client.ticker_24h("BTCUSDT")
    assert format(t.last_price, "f") == "0.00001234"
    assert t.price_change_pct == Decimal("1.73")
    assert t.bid_qty is None
    assert h.client.tickers_24h() == []
    assert h.client.book_ticker("BTCUSDT").ask_qty == Decimal("3")
    assert [b.symbol for b in h.client.book_tickers()] == ["BTCUSDT"]
    ob = h.client.depth("BTCUSDT", limit=5)
    assert ob.last_update_id == 20453289489
    assert format(ob.bids[0][1], "f") == "49999.00000"
    assert ob.fetched_at is not None
    assert h.requests[-1].url.params["limit"] == "5"


def test_exchange_info_parameters() -> None:
    body = (
        b'{"timezone":"CST","serverTime":1,"symbols":[{"symbol":"BTCUSDT","status":"1",'
        b'"baseAsset":"BTC","quoteAsset":"USDT","baseAssetPrecision":6,"quoteAssetPrecision":2,'
        b'"isSpotTradingAllowed":true,"quoteAmountPrecision":"1","baseSizePrecision":"0.000001",'
        b'"makerCommission":"0","takerCommission":"0.0005"}]}'
    )
    h = Harness(ok(body))
    markets = h.client.exchange_info()
    assert markets[0].is_tradable
    assert markets[0].min_qty == Decimal("0.000001")
    h.client.exchange_info(["BTCUSDT"])
    h.client.exchange_info(["BTCUSDT", "ethusdt"])
    h.client.exchange_info("BTCUSDT")
    assert h.client.exchange_info([]) == []
    params = [dict(r.url.params) for r in h.requests]
    assert params == [
        {},
        {"symbol": "BTCUSDT"},
        {"symbols": "BTCUSDT,ETHUSDT"},
        {"symbol": "BTCUSDT"},
    ]


def test_request_weights_are_taken_from_the_budget() -> None:
    h = Harness(ok(b'{"symbols": []}'))
    h.client.exchange_info()
    assert h.budget.in_use() == 10
    h.mexc.replies = [ok(b"[]")]
    h.client.tickers_24h()
    assert h.budget.in_use() == 50
    h.client.klines("BTCUSDT", "60m")
    assert h.budget.in_use() == 51


def test_single_symbol_answer_must_contain_the_symbol() -> None:
    h = Harness(ok(b'[{"symbol":"ETHUSDT"}]'), max_retries=0)
    with pytest.raises(MalformedResponseError, match="BTCUSDT"):
        h.client.ticker_24h("BTCUSDT")


def test_context_manager_closes() -> None:
    h = Harness(ok())
    with h.client as client:
        client.ping()
    with pytest.raises(RuntimeError):
        h.client.ping()


# --- client-side validation ------------------------------------------------------------


@pytest.mark.parametrize("interval", ["1h", "1H", "2h", "1w", ""])
def test_invalid_interval_rejected_before_sending(interval: str) -> None:
    h = Harness(ok(KLINES_BODY))
    with pytest.raises(InvalidIntervalError) as info:
        h.client.klines("BTCUSDT", interval)
    assert info.value.code == -1121
    assert info.value.exchange_message == "Invalid interval."
    assert "60m" in str(info.value)
    assert h.requests == []


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: c.klines("BTCUSDT", "1m", limit=0), "limit"),
        (lambda c: c.klines("BTCUSDT", "1m", limit=1001), "limit"),
        (lambda c: c.depth("BTCUSDT", limit=5001), "limit"),
        (lambda c: c.depth("BTCUSDT", limit=True), "limit"),
        (lambda c: c.klines("BTCUSDT", "1m", start=datetime(2024, 1, 1)), "timezone"),
        (
            lambda c: c.klines(
                "BTCUSDT",
                "1m",
                start=datetime(2024, 1, 2, tzinfo=UTC),
                end=datetime(2024, 1, 1, tzinfo=UTC),
            ),
            "before",
        ),
        (lambda c: c.ticker_24h(" "), "symbol"),
    ],
)
def test_bad_arguments_are_value_errors(call: Callable[[MexcClient], object], match: str) -> None:
    h = Harness(ok(KLINES_BODY))
    with pytest.raises(ValueError, match=match):
        call(h.client)
    assert h.requests == []


def test_limit_bounds_are_accepted() -> None:
    h = Harness(ok(KLINES_BODY))
    h.client.klines("BTCUSDT", "1M", limit=1000)
    h.mexc.replies = [ok(b'{"bids":[],"asks":[]}')]
    h.client.depth("BTCUSDT", limit=5000)
    assert [r.url.params["limit"] for r in h.requests] == ["1000", "5000"]


# --- rate limiting and retries ---------------------------------------------------------


def test_429_is_retried_after_retry_after() -> None:
    h = Harness(error(429, 429, "Too Many Requests"), ok(KLINES_BODY))
    h.mexc.replies[0].headers["Retry-After"] = "7"
    klines = h.client.klines("BTCUSDT", "5m")
    assert len(klines) == 2
    assert len(h.requests) == 2
    assert len(h.sleeps) == 1
    assert h.sleeps[0] >= 7
    [event] = h.events
    assert event.path == "/api/v3/klines"
    assert event.attempt == 1
    assert event.error == "RateLimitedError"
    assert event.delay == h.sleeps[0]
    assert "Retry-After: 7" in event.message


def test_retry_after_is_honoured_beyond_backoff_max_up_to_a_hard_cap() -> None:
    h = Harness(
        ok(b"", 429, **{"Retry-After": "60"}),
        ok(b"", 429, **{"Retry-After": "9999"}),
        ok(),
        backoff_max=30,
    )
    h.client.ping()
    assert h.sleeps == [60.0, 120.0]
    assert "beyond backoff_max" in h.events[0].message
    assert "capped at 120" in h.events[1].message


def test_retry_after_never_shortens_the_backoff() -> None:
    h = Harness(ok(b"", 429, **{"Retry-After": "0"}), ok(), backoff_base=2.0)
    h.client.ping()
    assert h.sleeps == [2.0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("soon", None),
        ("-3", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_429_without_usable_retry_after_uses_backoff() -> None:
    h = Harness(ok(b"", 429, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), ok())
    h.client.ping()
    assert h.sleeps == [0.5]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_retried_with_growing_backoff_then_raised(status: int) -> None:
    h = Harness(error(status), max_retries=4, backoff_base=0.5, backoff_max=30)
    with pytest.raises(ExchangeUnavailableError) as info:
        h.client.ping()
    assert info.value.http_status == status
    assert info.value.path == "/api/v3/ping"
    assert len(h.requests) == 5
    assert h.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert [e.attempt for e in h.events] == [1, 2, 3, 4]
    assert {e.error for e in h.events} == {"ExchangeUnavailableError"}


def test_backoff_is_capped_and_jittered() -> None:
    jitter = iter([0.5, 0.25, 1.0, 0.0])
    h = Harness(
        error(503), max_retries=4, backoff_base=4, backoff_max=10, random=lambda: next(jitter)
    )
    with pytest.raises(ExchangeUnavailableError):
        h.client.ping()
    assert h.sleeps == [2.0, 2.0, 10.0, 0.0]


def test_timeouts_retried_then_success() -> None:
    h = Harness(httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), ok(KLINES_BODY))
    assert len(h.client.klines("BTCUSDT", "1m")) == 2
    assert [e.error for e in h.events] == ["ExchangeTimeoutError", "ExchangeTimeoutError"]
    assert h.sleeps == [0.5, 1.0]


def test_timeouts_exhaust_retries() -> None:
    h = Harness(httpx.ReadTimeout("slow"), max_retries=2)
    with pytest.raises(ExchangeTimeoutError) as info:
        h.client.klines("BTCUSDT", "1m")
    assert isinstance(info.value, TemporaryExchangeError)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert len(h.requests) == 3
    assert h.sleeps == [0.5, 1.0]


def test_connection_errors_retried() -> None:
    h = Harness(httpx.ConnectError("refused"), httpx.RemoteProtocolError("reset"), ok())
    h.client.ping()
    assert [e.error for e in h.events] == ["ExchangeConnectionError", "ExchangeConnectionError"]


def test_zero_retries_raises_at_once() -> None:
    h = Harness(httpx.ConnectError("refused"), max_retries=0)
    with pytest.raises(ExchangeConnectionError):
        h.client.ping()
    assert len(h.requests) == 1
    assert h.sleeps == []


def test_retries_are_logged_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    h = Harness(error(503), ok())
    with caplog.at_level(logging.WARNING, logger="app.exchange.client"):
        h.client.ping()
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.path == "/api/v3/ping"
    assert record.attempt == 1
    assert record.delay == 0.5
    assert record.error == "ExchangeUnavailableError"
    assert "mexc.test" not in record.getMessage()


# --- permanent errors ------------------------------------------------------------------


def test_403_is_a_firewall_error_and_not_retried() -> None:
    h = Harness(ok(b"<html>Access denied</html>", 403))
    with pytest.raises(FirewallError) as info:
        h.client.ping()
    assert isinstance(info.value, PermanentExchangeError)
    assert info.value.http_status == 403
    assert "IP" in str(info.value)
    assert "ban" in str(info.value)
    assert len(h.requests) == 1
    assert h.sleeps == []
    assert h.events == []


@pytest.mark.parametrize(
    ("call", "body", "expected"),
    [
        (
            lambda c: c.klines("BTCUSDT", "1m"),
            error(400, -1121, "Invalid interval."),
            InvalidIntervalError,
        ),
        (
            lambda c: c.klines("NOPEUSDT", "1m"),
            error(400, -1121, "Invalid symbol."),
            InvalidSymbolError,
        ),
        (lambda c: c.klines("BTCUSDT", "1m"), error(400, -1121, None), InvalidIntervalError),
        (
            lambda c: c.ticker_24h("NOPEUSDT"),
            error(400, -1121, "Invalid symbol."),
            InvalidSymbolError,
        ),
        (lambda c: c.ticker_24h("NOPEUSDT"), error(400, -1121, None), InvalidSymbolError),
        (lambda c: c.depth("NOPEUSDT"), error(400, 10007, "bad symbol"), InvalidSymbolError),
        (lambda c: c.depth("NOPEUSDT"), error(400, 30014, "invalid symbol"), InvalidSymbolError),
        (lambda c: c.depth("NOPEUSDT"), error(400, 30021, "x"), InvalidSymbolError),
        (lambda c: c.depth("NOPEUSDT"), error(400, 730001, "x"), InvalidSymbolError),
        (
            lambda c: c.exchange_info(["A", "B"]),
            error(400, -1121, "Invalid symbol."),
            InvalidSymbolError,
        ),
        (
            lambda c: c.klines("BTCUSDT", "1m"),
            error(400, -1128, "Combination of optional parameters invalid."),
            BadRequestError,
        ),
        (lambda c: c.ping(), error(404), BadRequestError),
        (
            lambda c: c.klines("NOPEUSDT", "1m"),
            ok(b'{"msg":"Invalid symbol.","code":-1121}'),
            InvalidSymbolError,
        ),
        (
            lambda c: c.klines("BTCUSDT", "1m"),
            ok(b'{"code":"-1121","msg":"Invalid interval."}'),
            InvalidIntervalError,
        ),
    ],
)
def test_bad_requests_map_to_the_right_error_and_are_not_retried(
    call: Callable[[MexcClient], object], body: httpx.Response, expected: type[Exception]
) -> None:
    h = Harness(body)
    with pytest.raises(expected) as info:
        call(h.client)
    assert type(info.value) is expected
    assert isinstance(info.value, PermanentExchangeError)
    assert len(h.requests) == 1
    assert h.sleeps == []


def test_error_carries_mexc_code_and_message() -> None:
    h = Harness(error(400, -1121, "Invalid symbol."))
    with pytest.raises(InvalidSymbolError) as info:
        h.client.klines("NOPEUSDT", "1m")
    err = info.value
    assert (err.path, err.http_status, err.code) == ("/api/v3/klines", 400, -1121)
    assert err.exchange_message == "Invalid symbol."
    text = str(err)
    assert "NOPEUSDT" in text
    assert "-1121" in text
    assert "exchangeInfo" in text


def test_rate_limit_code_in_a_body_is_temporary() -> None:
    h = Harness(ok(b'{"code": 429, "msg": "Too Many Requests"}', 400), ok())
    h.client.ping()
    assert [e.error for e in h.events] == ["RateLimitedError"]


# --- malformed answers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"<html>maintenance</html>",
        b"",
        b'[[1640804880000,"1","1","1","1","1",1640804940000]]',  # 7-field row
        b'{"not": "a list"}',
        b'[[1640804880000,"NaN","1","1","1","1",1640804940000,"1"]]',
        b"[[1640804880000,NaN,1,1,1,1,1640804940000,1]]",
        b'[[1640804880000,"1","1","1","1","1",1640804940000,"1"]',
    ],
)
def test_malformed_answers_are_retried_then_raised(body: bytes) -> None:
    h = Harness(ok(body), max_retries=2)
    with pytest.raises(MalformedResponseError) as info:
        h.client.klines("BTCUSDT", "1m")
    assert isinstance(info.value, TemporaryExchangeError)
    assert len(h.requests) == 3
    assert [e.error for e in h.events] == ["MalformedResponseError"] * 2


def test_malformed_then_good_answer_recovers() -> None:
    h = Harness(ok(b"<html>"), ok(KLINES_BODY))
    assert len(h.client.klines("BTCUSDT", "1m")) == 2


# --- the weight budget -----------------------------------------------------------------


def test_budget_blocks_until_weight_is_free() -> None:
    h = Harness(ok())
    h.budget = WeightBudget(2, 10.0, clock=lambda: h.now, sleep=h._budget_sleep)
    h.client.budget = h.budget
    h.client.ping()
    h.client.ping()
    h.client.ping()
    assert h.budget_sleeps == [10.0]
    assert h.sleeps == []
    assert len(h.requests) == 3


def test_budget_exceeded_is_raised_without_retrying() -> None:
    h = Harness(ok(), budget_max_wait=1.0)
    h.client.budget = WeightBudget(2, 10.0, clock=lambda: 0.0, sleep=h._budget_sleep)
    h.client.ping()
    h.client.ping()
    with pytest.raises(RequestBudgetExceededError) as info:
        h.client.ping()
    assert info.value.path == "/api/v3/ping"
    assert info.value.wait_needed == pytest.approx(10.0)
    assert len(h.requests) == 2
    assert h.sleeps == []
    assert h.events == []


def test_retries_take_weight_again() -> None:
    h = Harness(error(503), ok())
    h.client.ping()
    assert h.budget.in_use() == 2


# --- concurrency and error objects -----------------------------------------------------


def test_concurrent_fetches_from_a_thread_pool() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        symbol = request.url.params["symbol"]
        price = str(len(symbol)) + ".00001234"
        return ok(f'{{"symbol":"{symbol}","bidPrice":"{price}","askPrice":"{price}"}}')

    h = Harness(route)
    symbols = [f"S{i}USDT" for i in range(40)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        books = list(pool.map(h.client.book_ticker, symbols))
    assert [b.symbol for b in books] == symbols
    assert all(format(b.bid_price, "f").endswith(".00001234") for b in books)
    assert h.budget.in_use() == 40


def test_errors_survive_pickling() -> None:
    err = RateLimitedError("slow down", retry_after=3.0, path="/api/v3/ping", http_status=429)
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is RateLimitedError
    assert (clone.retry_after, clone.path, clone.http_status) == (3.0, "/api/v3/ping", 429)
    assert str(clone) == str(err)


def test_error_tree() -> None:
    temporary = [
        RateLimitedError,
        ExchangeUnavailableError,
        ExchangeTimeoutError,
        ExchangeConnectionError,
        MalformedResponseError,
        RequestBudgetExceededError,
    ]
    permanent = [BadRequestError, InvalidSymbolError, InvalidIntervalError, FirewallError]
    assert all(issubclass(e, TemporaryExchangeError) for e in temporary)
    assert all(issubclass(e, PermanentExchangeError) for e in permanent)
    assert issubclass(InvalidSymbolError, BadRequestError)
    assert issubclass(InvalidIntervalError, BadRequestError)
    assert issubclass(TemporaryExchangeError, ExchangeError)
    assert not issubclass(FirewallError, BadRequestError)
