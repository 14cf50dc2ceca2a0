"""Batched writes of the live state to Redis (an asyncio client).

Frames update pending values in memory; `flush` (every STREAM_FLUSH_INTERVAL_MS, and before a
tick run is sent) writes them in one pipeline: the newest book ticker and candle per symbol
(older ones in between are coalesced), every deal, closed candle and history point, counter
increments and statuses. Every per-symbol key is written with the symbol TTL, so a symbol no
longer watched disappears; lists are trimmed to their caps. A failed flush (Redis down) keeps
the newest values, drops what exceeds the caps, and is retried on the next flush.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from redis.exceptions import RedisError

from app.stream import keys
from app.stream.records import BookState, DealState, KlineState, MiniTickerState, dumps

log = logging.getLogger(__name__)

PRUNE_TICKERS_EVERY_MS = 60_000


@dataclass
class _Pending:
    tickers: dict[str, str] = field(default_factory=dict)
    tickers_meta: str | None = None
    books: dict[str, str] = field(default_factory=dict)
    klines: dict[str, str] = field(default_factory=dict)
    closed: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    deals: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    history: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    status: dict[str, str] = field(default_factory=dict)
    drop_status: set[str] = field(default_factory=set)

    def empty(self) -> bool:
        return not (
            self.tickers
            or self.tickers_meta
            or self.books
            or self.klines
            or self.closed
            or self.deals
            or self.history
            or self.counters
            or self.status
            or self.drop_status
        )


class StateWriter:
    def __init__(
        self,
        redis: Any,
        prefix: str,
        symbol_ttl_sec: int,
        deals_kept: int,
        klines_kept: int,
        history_kept: int,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_ms = symbol_ttl_sec * 1000
        self.tickers_ttl_sec = max(3600, 10 * symbol_ttl_sec)
        self.caps = {"deals": deals_kept, "klines": klines_kept, "history": history_kept}
        self._pending = _Pending()
        self._ticker_seen: dict[str, int] = {}
        self._pruned_at = 0
        self._failing_since: float | None = None
        self.flushes = 0
        self.failed_flushes = 0

    # ---- what frames bring ------------------------------------------------------------------

    def mini_tickers(
        self, tickers: list[MiniTickerState], send_time: int, received_at: int
    ) -> None:
        for ticker in tickers:
            self._pending.tickers[ticker.symbol] = ticker.to_json()
            self._ticker_seen[ticker.symbol] = received_at
        self._pending.tickers_meta = dumps({"t": send_time, "rt": received_at, "n": len(tickers)})

    def book(self, state: BookState) -> None:
        self._pending.books[state.symbol] = state.to_json()

    def deals(self, symbol: str, deals: list[DealState]) -> None:
        self._pending.deals[symbol].extend(d.to_json() for d in deals)
        self._cap(self._pending.deals[symbol], "deals")

    def kline(self, symbol: str, current: KlineState, closed: KlineState | None) -> None:
        self._pending.klines[symbol] = current.to_json()
        if closed is not None:
            self._pending.closed[symbol].append(closed.to_json())
            self._cap(self._pending.closed[symbol], "klines")

    def history(self, symbol: str, points: list[tuple[int, Decimal]]) -> None:
        self._pending.history[symbol].extend(f"{ms}:{format(p, 'f')}" for ms, p in points)
        self._cap(self._pending.history[symbol], "history")

    def count(self, name: str, n: int = 1) -> None:
        self._pending.counters[name] += n

    def status(self, field_name: str, data: dict[str, Any]) -> None:
        self._pending.status[field_name] = dumps(data)
        self._pending.drop_status.discard(field_name)

    def drop_status(self, field_name: str) -> None:
        self._pending.status.pop(field_name, None)
        self._pending.drop_status.add(field_name)

    def _cap(self, items: list[str], kind: str) -> None:
        excess = len(items) - self.caps[kind]
        if excess > 0:
            del items[:excess]

    # ---- writing ------------------------------------------------------------------------------

    async def flush(self) -> bool:
        """Write what is pending in one pipeline; False (logged) when Redis failed."""
        pending, self._pending = self._pending, _Pending()
        if pending.empty():
            return True
        try:
            await self._write(pending)
        except (RedisError, OSError) as exc:
            self._restore(pending)
            self.failed_flushes += 1
            now = time.monotonic()
            if self._failing_since is None or now - self._failing_since > 30:
                self._failing_since = now
                log.error(
                    "cannot write the stream state to Redis; retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}"},
                )
            return False
        if self._failing_since is not None:
            log.info("writing the stream state to Redis again")
            self._failing_since = None
        self.flushes += 1
        return True

    async def _write(self, p: _Pending) -> None:
        prefix, ttl = self.prefix, self.ttl_ms
        pipe = self.redis.pipeline(transaction=False)
        if p.tickers or p.tickers_meta:
            mapping = dict(p.tickers)
            if p.tickers_meta:
                mapping[keys.META_FIELD] = p.tickers_meta
            pipe.hset(keys.tickers(prefix), mapping=mapping)
            pipe.expire(keys.tickers(prefix), self.tickers_ttl_sec)
            self._prune_tickers(pipe)
        for symbol, value in p.books.items():
            pipe.set(keys.book(prefix, symbol), value, px=ttl)
        for symbol, value in p.klines.items():
            pipe.set(keys.kline(prefix, symbol), value, px=ttl)
        for kind, lists, key_of in (
            ("deals", p.deals, keys.deals),
            ("klines", p.closed, keys.klines),
            ("history", p.history, keys.prices),
        ):
            for symbol, items in lists.items():
                if not items:
                    continue
                key = key_of(prefix, symbol)
                pipe.lpush(key, *items)  # oldest first in, so the newest ends up at index 0
                pipe.ltrim(key, 0, self.caps[kind] - 1)
                pipe.pexpire(key, ttl)
        if p.counters:
            for name, n in p.counters.items():
                pipe.hincrby(keys.counters(prefix), name, n)
            pipe.expire(keys.counters(prefix), keys.COUNTERS_TTL_SEC)
        if p.status:
            pipe.hset(keys.status(prefix), mapping=p.status)
            pipe.expire(keys.status(prefix), keys.STATUS_TTL_SEC)
        if p.drop_status:
            pipe.hdel(keys.status(prefix), *p.drop_status)
        await pipe.execute()

    def _prune_tickers(self, pipe: Any) -> None:
        """Forget symbols no miniTickers frame carried for the symbol TTL (delisted)."""
        now = time.time_ns() // 1_000_000
        if now - self._pruned_at < PRUNE_TICKERS_EVERY_MS:
            return
        self._pruned_at = now
        gone = [s for s, seen in self._ticker_seen.items() if now - seen > self.ttl_ms]
        if gone:
            pipe.hdel(keys.tickers(self.prefix), *gone)
            for symbol in gone:
                del self._ticker_seen[symbol]

    def _restore(self, p: _Pending) -> None:
        """Put back what a failed flush did not write, under what came since (newer wins)."""
        now = self._pending
        now.tickers = {**p.tickers, **now.tickers}
        now.tickers_meta = now.tickers_meta or p.tickers_meta
        now.books = {**p.books, **now.books}
        now.klines = {**p.klines, **now.klines}
        for kind, old, new in (
            ("klines", p.closed, now.closed),
            ("deals", p.deals, now.deals),
            ("history", p.history, now.history),
        ):
            for symbol, items in old.items():
                new[symbol][:0] = items
                self._cap(new[symbol], kind)
        for name, n in p.counters.items():
            now.counters[name] += n
        now.status = {**p.status, **now.status}
        now.drop_status |= p.drop_status - set(now.status)
