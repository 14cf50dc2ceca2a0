"""What can go wrong talking to MEXC, sorted by what the caller should do about it.

TemporaryExchangeError: try again later (the client already retried).
PermanentExchangeError: the same request will fail again; fix the request or the setup.
"""

from __future__ import annotations

from typing import ClassVar


class ExchangeError(Exception):
    """Base of every error the MEXC client raises."""

    advice: ClassVar[str] = "See the exchange log for details."

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        http_status: int | None = None,
        code: int | None = None,
        exchange_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.http_status = http_status
        self.code = code
        self.exchange_message = exchange_message

    def __str__(self) -> str:
        details = self._details()
        where = f" [{', '.join(details)}]" if details else ""
        return f"{self.message}{where}. {self.advice}"

    def _details(self) -> list[str]:
        details = []
        if self.path:
            details.append(self.path)
        if self.http_status is not None:
            details.append(f"HTTP {self.http_status}")
        if self.code is not None:
            details.append(f"code {self.code}")
        if self.exchange_message:
            details.append(f"msg {self.exchange_message!r}")
        return details


class TemporaryExchangeError(ExchangeError):
    """Retry later: the request itself is fine."""

    advice = "This is temporary; retry later."


class RateLimitedError(TemporaryExchangeError):
    """HTTP 429: MEXC's rate limit was hit."""

    advice = (
        "Slow down and retry after the Retry-After delay; repeated abuse gets the IP banned "
        "for 2 minutes up to 3 days."
    )

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        path: str | None = None,
        http_status: int | None = None,
        code: int | None = None,
        exchange_message: str | None = None,
    ) -> None:
        super().__init__(
            message,
            path=path,
            http_status=http_status,
            code=code,
            exchange_message=exchange_message,
        )
        self.retry_after = retry_after

    def _details(self) -> list[str]:
        details = super()._details()
        if self.retry_after is not None:
            details.append(f"Retry-After: {self.retry_after:g} s")
        return details


class ExchangeUnavailableError(TemporaryExchangeError):
    """HTTP 5xx: a MEXC-side failure."""

    advice = "MEXC had an internal error; retry later."


class ExchangeTimeoutError(TemporaryExchangeError):
    """No answer within the client's timeout."""

    advice = "MEXC did not answer in time; retry later or raise the timeout."


class ExchangeConnectionError(TemporaryExchangeError):
    """The connection failed (DNS, TCP, TLS, reset)."""

    advice = "Check network connectivity to MEXC, then retry."


class MalformedResponseError(TemporaryExchangeError):
    """The body was not JSON or not the documented shape."""

    advice = "The answer was not what MEXC documents (proxy page, truncated body?); retry later."


class RequestBudgetExceededError(TemporaryExchangeError):
    """The client-side weight budget could not grant the request within its max wait.

    The client does not retry this itself: the caller is already asking for more than the
    budget allows and should back off or spread its requests.
    """

    advice = "Too many requests queued in this process; make fewer requests or wait."

    def __init__(
        self, message: str, *, wait_needed: float | None = None, path: str | None = None
    ) -> None:
        super().__init__(message, path=path)
        self.wait_needed = wait_needed


class PermanentExchangeError(ExchangeError):
    """Do not retry: the same request will fail the same way."""

    advice = "Do not retry this request unchanged."


class BadRequestError(PermanentExchangeError):
    """HTTP 4xx (or an error body) naming a problem with the request."""

    advice = "Fix the request parameters; retrying unchanged will fail again."


class InvalidSymbolError(BadRequestError):
    """MEXC does not know the symbol (codes -1121, 10007, 30014, 30021, 730001)."""

    advice = "Check the symbol against exchangeInfo (it may be delisted); do not retry it."


class InvalidIntervalError(BadRequestError):
    """MEXC rejects the kline interval (code -1121 "Invalid interval.")."""

    advice = "Use one of MEXC's intervals: 1m 5m 15m 30m 60m 4h 1d 1W 1M (there is no 1h)."


class FirewallError(PermanentExchangeError):
    """HTTP 403 from MEXC's web application firewall."""

    advice = (
        "MEXC's firewall refused the request: stop polling, check whether this IP is blocked "
        "or banned (bans last 2 minutes up to 3 days) and the request rate, and only resume "
        "once that is resolved."
    )
