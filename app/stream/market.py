"""One watched symbol as the streamer follows it, in memory: the last price, the 1m candle in
progress, the recent deals, and when a candle closes. Pure: frames in, updates out."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from decimal import Decimal

from app.stream.records import MINUTE_MS, DealState, KlineState

RECENT_DEALS = 2000  # enough to complete a minute's candle from its last frame


@dataclass(frozen=True, slots=True)
class KlineUpdate:
    current: KlineState
    closed: KlineState | None  # the candle that just closed, completed with its last deals
    minute_closed: int | None  # open time (ms) of the minute that closed, if one did


class SymbolLive:
    def __init__(self, symbol: str, history_step_ms: int = 1000) -> None:
        self.symbol = symbol
        self.history_step_ms = history_step_ms
        self.last_price: Decimal | None = None
        self.last_price_ms = -1
        self.kline: KlineState | None = None
        self.kline_session: int | None = None
        self.recent: deque[DealState] = deque(maxlen=RECENT_DEALS)
        self._history_step = -1

    def _price(self, price: Decimal, ms: int) -> tuple[int, Decimal] | None:
        """Record a last price; the history point it makes (one per step), if any."""
        if ms < self.last_price_ms:
            return None
        self.last_price, self.last_price_ms = price, ms
        step = ms // self.history_step_ms
        if step > self._history_step:
            self._history_step = step
            return ms, price
        return None

    def on_deals(self, deals: list[DealState]) -> list[tuple[int, Decimal]]:
        """Take a frame's deals (oldest first); returns the price history points they make."""
        points = []
        for deal in deals:
            self.recent.append(deal)
            point = self._price(deal.price, deal.time)
            if point is not None:
                points.append(point)
        return points

    def on_kline(self, kline: KlineState, session: int) -> KlineUpdate | None:
        """Take a 1m kline frame read on connection session `session`; None for a frame older
        than the candle already held (a late frame after a reconnect)."""
        previous = self.kline
        if previous is not None and kline.open_time < previous.open_time:
            return None
        closed = minute = None
        if previous is not None and kline.open_time > previous.open_time:
            complete = self.kline_session == session and previous.close_time == kline.open_time
            closed = replace(previous.with_deals(list(self.recent)), closed=True)
            closed = replace(closed, complete=complete)
            minute = kline.open_time - MINUTE_MS
        self.kline, self.kline_session = kline, session
        if kline.updated_at > self.last_price_ms:
            self.last_price, self.last_price_ms = kline.close, kline.updated_at
        return KlineUpdate(kline, closed, minute)
