"""MEXC's public spot WebSocket channels: parsing their names and building their frames.

Every frame is computed from the same market as the REST answers, at one market moment:
a bookTicker frame is /api/v3/depth's top of book at its createTime, a deal is a trade of
/api/v3/trades and /api/v3/aggTrades, a kline frame is the REST candle at that moment.

Channels (<S> an upper-case symbol, <TZ> UTC, UTC+8, UTC-5, UTC+5:30 ...):

    spot@public.miniTickers.v3.api.pb@<TZ>                      every symbol, periodically
    spot@public.miniTicker.v3.api.pb@<S>@<TZ>                   periodically
    spot@public.aggre.bookTicker.v3.api.pb@(100ms|10ms)@<S>     every period (MEXC repeats
                                                                an unchanged quote too)
    spot@public.aggre.deals.v3.api.pb@(100ms|10ms)@<S>          the trades since the last push
    spot@public.aggre.depth.v3.api.pb@(100ms|10ms)@<S>          changed levels, on change
    spot@public.limit.depth.v3.api.pb@<S>@(5|10|20)             top levels, on change
    spot@public.kline.v3.api.pb@<S>@<Min1|...|Month1>           the current candle, every second
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from decimal import Decimal

from app.exchange.proto.codec import (
    AggreDepth,
    BookTicker,
    Deal,
    Deals,
    Kline,
    LimitDepth,
    MiniTicker,
    PriceLevel,
)
from app.exchange.simulator import book, klines, tape
from app.exchange.simulator.answers import change_fraction, units_str
from app.exchange.simulator.candles import HOUR_MS, MINUTE_MS, SymbolSeries
from app.exchange.simulator.market import SimulatedMarket

KLINE_INTERVALS = {
    "Min1": "1m",
    "Min5": "5m",
    "Min15": "15m",
    "Min30": "30m",
    "Min60": "60m",
    "Hour4": "4h",
    "Hour8": "8h",
    "Day1": "1d",
    "Week1": "1W",
    "Month1": "1M",
}
DIFF_MAX_LEVELS = 1000  # depth diffs keep a book synced from /api/v3/depth?limit=1000
# A retreat of the best price that would remove more levels than this is sent as a version gap
# instead: the client resyncs from a REST snapshot, as MEXC's guide says to after a gap.
REMOVE_MAX_LEVELS = 6000
_DAY_MS = 86_400_000
_UTC8_MS = 8 * HOUR_MS
_TZ = re.compile(r"UTC(?:([+-])(\d{1,2})(?::(\d{2}))?)?")
_PREFIX = "spot@public."


@dataclass(frozen=True, slots=True)
class Channel:
    """A parsed channel name."""

    name: str
    kind: str  # miniTickers, miniTicker, bookTicker, deals, depth, limitDepth, kline
    symbol: str | None = None
    period_ms: int = 0  # 100 or 10 for the aggre channels
    levels: int = 0  # limit.depth
    interval: str = ""  # MEXC's kline name (Min1 ...)
    tz_offset_ms: int = 0

    @property
    def event_type(self) -> str:
        if self.kind == "limitDepth":
            return "spot@public.limit.depth.v3.api.pb"
        base = {"deals": "aggre.deals", "depth": "aggre.depth", "bookTicker": "aggre.bookTicker"}
        return f"{_PREFIX}{base.get(self.kind, self.kind)}.v3.api.pb@{self.period_ms}ms"


def _tz(text: str) -> int | None:
    m = _TZ.fullmatch(text)
    if m is None:
        return None
    sign, hours, minutes = m.groups()
    if sign is None:
        return 0
    offset = int(hours) * 60 + int(minutes or 0)
    if offset > 14 * 60 or int(minutes or 0) >= 60:
        return None
    return (1 if sign == "+" else -1) * offset * MINUTE_MS


def parse_channel(name: str, market: SimulatedMarket) -> Channel | None:
    """The channel, or None for a name MEXC would refuse ("Blocked!")."""
    if not isinstance(name, str) or not name.startswith(_PREFIX):
        return None
    parts = name[len(_PREFIX) :].split("@")
    topic, args = parts[0], parts[1:]

    def symbol(s: str) -> str | None:
        return s if market.has_symbol(s) else None

    if topic == "miniTickers.v3.api.pb" and len(args) == 1:
        offset = _tz(args[0])
        return None if offset is None else Channel(name, "miniTickers", tz_offset_ms=offset)
    if topic == "miniTicker.v3.api.pb" and len(args) == 2:
        offset, sym = _tz(args[1]), symbol(args[0])
        if offset is None or sym is None:
            return None
        return Channel(name, "miniTicker", sym, tz_offset_ms=offset)
    aggre = {
        "aggre.bookTicker.v3.api.pb": "bookTicker",
        "aggre.deals.v3.api.pb": "deals",
        "aggre.depth.v3.api.pb": "depth",
    }
    if topic in aggre and len(args) == 2 and args[0] in ("100ms", "10ms"):
        sym = symbol(args[1])
        return None if sym is None else Channel(name, aggre[topic], sym, int(args[0][:-2]))
    if topic == "limit.depth.v3.api.pb" and len(args) == 2 and args[1] in ("5", "10", "20"):
        sym = symbol(args[0])
        return None if sym is None else Channel(name, "limitDepth", sym, levels=int(args[1]))
    if topic == "kline.v3.api.pb" and len(args) == 2 and args[1] in KLINE_INTERVALS:
        sym = symbol(args[0])
        return None if sym is None else Channel(name, "kline", sym, interval=args[1])
    return None


def _d(units: int, prec: int) -> Decimal:
    return Decimal(units_str(units, prec))


def _day_reference(
    market: SimulatedMarket, symbol: str, now_ms: int, offset_ms: int
) -> tuple[int, int] | None:
    """(open of the zone's day, close before it) in ticks; the day starts at 00:00 local."""
    start = (now_ms + offset_ms) // _DAY_MS * _DAY_MS - offset_ms
    return market.day_reference(symbol, start, now_ms)


def mini_ticker(market: SimulatedMarket, symbol: str, now_ms: int, tz_offset_ms: int) -> MiniTicker:
    spec = market.spec(symbol)
    series = market.series(symbol)
    qp, bp = spec.quote_prec, spec.base_prec
    window, _ = market.window_24h(symbol, now_ms)
    last = series.last_trade(now_ms)
    utc8 = _day_reference(market, symbol, now_ms, _UTC8_MS)
    zoned = _day_reference(market, symbol, now_ms, tz_offset_ms)
    if window is None or last is None or utc8 is None or zoned is None:
        return MiniTicker(symbol, *(None,) * 11)
    high, low = _d(window.high, qp), _d(window.low, qp)
    return MiniTicker(
        symbol=symbol,
        price=_d(last.price, qp),
        rate=Decimal(change_fraction(last.price, utc8[0])),
        zoned_rate=Decimal(change_fraction(last.price, zoned[0])),
        high=high,
        low=low,
        volume=_d(window.quote, qp + bp),
        quantity=_d(window.volume, bp),
        last_close_rate=Decimal(change_fraction(last.price, utc8[1])),
        last_close_zoned_rate=Decimal(change_fraction(last.price, zoned[1])),
        last_close_high=high,
        last_close_low=low,
    )


def book_ticker(market: SimulatedMarket, symbol: str, now_ms: int) -> BookTicker | None:
    best = market.top(symbol, now_ms)
    if best is None:
        return None
    spec = market.spec(symbol)
    qp, bp = spec.quote_prec, spec.base_prec
    return BookTicker(
        _d(best.bid, qp),
        _d(best.bid_qty, bp),
        _d(best.ask, qp),
        _d(best.ask_qty, bp),
        best.version,
        best.last.t,
    )


def deals(
    market: SimulatedMarket,
    channel: Channel,
    after_ms: int,
    now_ms: int,
    sent: frozenset[str] = frozenset(),
) -> Deals | None:
    """The trades with after_ms <= time <= now_ms whose ids are not in `sent` (those of
    after_ms already pushed), or None when there are none."""
    assert channel.symbol is not None
    if now_ms < after_ms:
        return None
    spec = market.spec(channel.symbol)
    rows = [
        t
        for t in tape.between(market.series(channel.symbol), after_ms, now_ms, 10_000)
        if t.t > after_ms or str(t.trade_id) not in sent
    ]
    if not rows:
        return None
    items = tuple(
        Deal(
            _d(t.price, spec.quote_prec),
            _d(t.qty, spec.base_prec),
            1 if t.buy else 2,
            t.t,
            str(t.trade_id),
        )
        for t in rows
    )
    return Deals(items, channel.event_type)


Held = dict[bool, tuple[int, int]]  # per side (True: bids): lowest and highest best price


class _TooLarge(Exception):
    """A diff would remove more than REMOVE_MAX_LEVELS levels."""


def _changed_prices(
    series: SymbolSeries,
    before: book.Top,
    after: book.Top,
    t0: int,
    t1: int,
    bid_side: bool,
    held: tuple[int, int],
) -> tuple[set[int], set[int]]:
    """(prices whose level may differ between the book at t0 and the one at t1, with no event
    in between; prices a client must be sent whatever their quantity did).

    Candidates: the near levels of both books, the levels the best price crossed, and every
    level of the top DIFF_MAX_LEVELS when the depth factor changed. A retreating best price
    removes every level it gave up that a client may hold (one synced from a snapshot of
    DIFF_MAX_LEVELS taken while the best price stayed within `held`), and brings levels into
    the top DIFF_MAX_LEVELS that such a client has never seen: those are sent regardless."""
    step = series.spec.level_step_ticks
    b0, b1 = (before.bid, after.bid) if bid_side else (before.ask, after.ask)
    moved = abs(b1 - b0) // step + 2
    prices = set(book.grid(b0, step, bid_side, book.NEAR_LEVELS))
    prices.update(book.grid(b1, step, bid_side, min(DIFF_MAX_LEVELS, book.NEAR_LEVELS + moved)))
    forced: set[int] = set()
    if b1 < b0 if bid_side else b1 > b0:
        lowest = held[0] - DIFF_MAX_LEVELS * step if bid_side else held[1] + DIFF_MAX_LEVELS * step
        reach = min(moved, abs(b0 - lowest) // step + 2)
        if reach > REMOVE_MAX_LEVELS:
            raise _TooLarge
        forced.update(book.grid(b0, step, bid_side, reach))  # gone, or new to the client
        forced.update(book.grid(b1, step, bid_side, min(DIFF_MAX_LEVELS, moved)))
        prices -= forced
    if series.timeline.depth_factor(t0) != series.timeline.depth_factor(t1):
        prices.update(book.grid(b1, step, bid_side, DIFF_MAX_LEVELS))
        prices.update(book.grid(b0, step, bid_side, DIFF_MAX_LEVELS))
    return prices, forced


def depth_diff(
    market: SimulatedMarket,
    symbol: str,
    since_ms: int,
    now_ms: int,
    held: Held | None = None,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]], int, Held] | None:
    """(asks, bids) whose level changed in (since_ms, now_ms], with their quantities at now_ms
    (0: the level is gone), the last trade's time and `held` widened by the best prices of
    the period; None when that would remove more than REMOVE_MAX_LEVELS levels (the caller
    makes a version gap). The book changes only at trades, whole seconds and scenario starts;
    every one of those moments counts, so a level that changed and came back is listed too."""
    series = market.series(symbol)
    events = {since_ms, now_ms}
    events.update(t.t for t in tape.between(series, since_ms + 1, now_ms, 10_000))
    events.update(range((since_ms // 1000 + 1) * 1000, now_ms + 1, 1000))
    events.update(s.start_ms for s in series.timeline.segments if since_ms < s.start_ms <= now_ms)
    moments = sorted(events)
    tops = [book.top(series, t) for t in moments]
    final = tops[-1]
    if final is None:
        return [], [], 0, held or {}
    seen = [t for t in tops if t is not None]
    held = dict(held or {True: (final.bid, final.bid), False: (final.ask, final.ask)})
    for side in (True, False):
        bests = [t.bid if side else t.ask for t in seen]
        held[side] = (min(held[side][0], *bests), max(held[side][1], *bests))
    changed: dict[bool, set[int]] = {True: set(), False: set()}
    for (t0, s0), (t1, s1) in itertools.pairwise(zip(moments, tops, strict=True)):
        if s0 is None or s1 is None:
            continue
        for side in (True, False):
            try:
                candidates, forced = _changed_prices(series, s0, s1, t0, t1, side, held[side])
            except _TooLarge:
                return None
            changed[side] |= forced
            for price in candidates - changed[side]:
                before = book.level_quantity(series, t0, s0, side, price)
                if before != book.level_quantity(series, t1, s1, side, price):
                    changed[side].add(price)
    ask_rows = [
        (p, book.level_quantity(series, now_ms, final, False, p)) for p in sorted(changed[False])
    ]
    bid_rows = [
        (p, book.level_quantity(series, now_ms, final, True, p))
        for p in sorted(changed[True], reverse=True)
    ]
    return ask_rows, bid_rows, final.last.t, held


def depth_gap(
    market: SimulatedMarket, channel: Channel, now_ms: int, last_version: int
) -> tuple[AggreDepth, int]:
    """An empty diff that skips a version: the client must take a new REST snapshot."""
    assert channel.symbol is not None
    series = market.series(channel.symbol)
    to_version = max(book.version(series, now_ms), last_version + 2)
    best = book.top(series, now_ms)
    last_t = best.last.t if best is not None else 0
    gap = AggreDepth((), (), channel.event_type, last_version + 2, to_version, last_t)
    return gap, to_version


def aggre_depth(
    market: SimulatedMarket,
    channel: Channel,
    since_ms: int,
    now_ms: int,
    from_version: int,
    held: Held | None,
) -> tuple[AggreDepth | None, int, Held | None]:
    """(the diff frame body or None when nothing changed, the version at now_ms, the best
    prices' range so far)."""
    assert channel.symbol is not None
    spec = market.spec(channel.symbol)
    series = market.series(channel.symbol)
    to_version = book.version(series, now_ms)
    found = depth_diff(market, channel.symbol, since_ms, now_ms, held)
    if found is None:  # too large a move: skip a version, the client resyncs from REST
        gap, to_version = depth_gap(market, channel, now_ms, from_version - 1)
        return gap, to_version, None
    asks, bids, last_t, held = found
    if not asks and not bids:
        return None, to_version, held
    qp, bp = spec.quote_prec, spec.base_prec
    body = AggreDepth(
        tuple(PriceLevel(_d(p, qp), _d(q, bp)) for p, q in asks),
        tuple(PriceLevel(_d(p, qp), _d(q, bp)) for p, q in bids),
        channel.event_type,
        from_version,
        to_version,
        last_t,
    )
    return body, to_version, held


def limit_depth(market: SimulatedMarket, channel: Channel, now_ms: int) -> LimitDepth | None:
    assert channel.symbol is not None
    spec = market.spec(channel.symbol)
    found = book.levels(market.series(channel.symbol), now_ms, channel.levels)
    if found is None:
        return None
    bids, asks, best = found
    qp, bp = spec.quote_prec, spec.base_prec
    return LimitDepth(
        tuple(PriceLevel(_d(p, qp), _d(q, bp)) for p, q in asks),
        tuple(PriceLevel(_d(p, qp), _d(q, bp)) for p, q in bids),
        channel.event_type,
        best.version,
        best.last.t,
    )


def kline(market: SimulatedMarket, channel: Channel, now_ms: int) -> Kline | None:
    """The candle in progress at now_ms, as /api/v3/klines serves it."""
    assert channel.symbol is not None
    spec = market.spec(channel.symbol)
    interval = KLINE_INTERVALS[channel.interval]
    opened = klines.floor_open(now_ms, interval)
    rows = klines.candles(market.series(channel.symbol), interval, [opened], now_ms)
    if not rows:
        return None
    _, agg = rows[0]
    qp, bp = spec.quote_prec, spec.base_prec
    return Kline(
        channel.interval,
        opened // 1000,
        klines.next_open(opened, interval) // 1000,
        _d(agg.open, qp),
        _d(agg.close, qp),
        _d(agg.high, qp),
        _d(agg.low, qp),
        _d(agg.volume, bp),
        _d(agg.quote, qp + bp),
    )
