"""The live market state in Redis, for the rest of the system: what the market-data stage
writes for the streamer (set_watched, set_stops) and what every process reads (read_*,
stream_health, stream_metrics). Plain functions over a synchronous redis client; `prefix` is
REDIS_KEY_PREFIX. The layout is in app/stream/keys.py.

    set_watched(r, prefix, screened | held, prices=evaluated)   # every market-data run
    set_stops(r, prefix, {"BTCUSDT": Decimal("41000")})           # every market-data run
    got = read_universe(r, prefix, max_age_sec=10)
    if got is None: ...fall back to REST...
    prices, data_time, age = got
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from app.config import SYMBOL_PATTERN
from app.stream import keys
from app.stream.records import (
    BookState,
    DealState,
    KlineState,
    MiniTickerState,
    ms_to_datetime,
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _symbols(symbols: Iterable[str]) -> list[str]:
    out = set()
    for symbol in symbols:
        name = str(symbol).strip().upper()
        if not SYMBOL_PATTERN.fullmatch(name):
            raise ValueError(f"{symbol!r} is not a MEXC spot symbol (e.g. BTCUSDT)")
        out.add(name)
    return sorted(out)


def _symbols_in_order(symbols: Iterable[str]) -> list[str]:
    return [_symbols([s])[0] for s in symbols]


def _price(symbol: str, value: Any) -> Decimal:
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{symbol}: {value!r} is not a price") from None
    if not price.is_finite() or price <= 0:
        raise ValueError(f"{symbol}: {value!r} is not a positive price")
    return price


# ---- written by the market-data stage -----------------------------------------------------


def set_watched(
    redis: Any,
    prefix: str,
    symbols: Iterable[str],
    *,
    prices: Mapping[str, Decimal] | None = None,
    at_ms: int | None = None,
    ttl_sec: int = keys.WATCH_TTL_SEC,
) -> None:
    """The symbols the streamer follows closely (book ticker, deals, 1m klines): the run's
    screened symbols and every held one. `prices` are the prices this run evaluated them at:
    the move trigger measures from them (without, from the price the streamer sees when it
    reads the new set). ValueError names a symbol or price that is not one."""
    names = _symbols(symbols)
    given = prices or {}
    evaluated = {
        name: format(_price(name, price), "f")
        for name, price in zip(_symbols_in_order(given), given.values(), strict=True)
        if name in names
    }
    payload = {"symbols": names, "prices": evaluated, "at": at_ms or _now_ms()}
    redis.set(keys.watched(prefix), json.dumps(payload, separators=(",", ":")), ex=ttl_sec)


def set_stops(
    redis: Any, prefix: str, stops: Mapping[str, Decimal], *, ttl_sec: int = keys.WATCH_TTL_SEC
) -> None:
    """The stop price of every held position (replacing the previous set; {} clears it). A
    held symbol whose price reaches its stop sends a tick run. Stop symbols are watched too."""
    mapping = {
        name: format(_price(name, price), "f")
        for name, price in zip(_symbols_in_order(stops), stops.values(), strict=True)
    }
    pipe = redis.pipeline(transaction=True)
    pipe.delete(keys.stops(prefix))
    if mapping:
        pipe.hset(keys.stops(prefix), mapping=mapping)
        pipe.expire(keys.stops(prefix), ttl_sec)
    pipe.execute()


@dataclass(frozen=True, slots=True)
class Watched:
    symbols: tuple[str, ...]
    prices: dict[str, Decimal]
    at_ms: int


def parse_watched(raw: Any) -> Watched | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Watched(
            tuple(s for s in data.get("symbols", []) if SYMBOL_PATTERN.fullmatch(str(s))),
            {s: Decimal(p) for s, p in (data.get("prices") or {}).items()},
            int(data.get("at", 0)),
        )
    except (ValueError, TypeError, AttributeError, InvalidOperation):
        return None


def parse_stops(raw: Mapping[Any, Any]) -> dict[str, Decimal]:
    out = {}
    for symbol, value in raw.items():
        try:
            out[_text(symbol)] = _price(_text(symbol), _text(value))
        except ValueError:
            continue
    return out


def read_watched(redis: Any, prefix: str) -> Watched | None:
    return parse_watched(redis.get(keys.watched(prefix)))


def read_stops(redis: Any, prefix: str) -> dict[str, Decimal]:
    return parse_stops(redis.hgetall(keys.stops(prefix)))


# ---- the market -----------------------------------------------------------------------------


class StreamUniverse(NamedTuple):
    """Every symbol's last price from the stream, when it was current, and how old it is."""

    prices: dict[str, Decimal]
    data_time: datetime  # MEXC's sendTime of the newest miniTickers frame
    age: float  # seconds


class StreamTickers(NamedTuple):
    tickers: dict[str, MiniTickerState]
    data_time: datetime
    age: float


def _age_ms(send_time: int, received_at: int, now_ms: int) -> int:
    """Age of data MEXC stamped `send_time` and we read at `received_at`: from the older of
    the two, so a frozen feed (old sendTime, fresh receipt) and a silent one (no receipt) are
    both stale, whichever clock runs ahead."""
    return now_ms - min(send_time, received_at)


def read_mini_tickers(
    redis: Any, prefix: str, max_age_sec: float, *, now_ms: int | None = None
) -> StreamTickers | None:
    """Every symbol's mini ticker (price, 24h change, volume, high/low) from one HGETALL;
    None when the stream is down or its newest frame is older than max_age_sec. Symbols no
    frame carried within max_age_sec are left out."""
    now_ms = _now_ms() if now_ms is None else now_ms
    raw = redis.hgetall(keys.tickers(prefix))
    meta_raw = raw.pop(keys.META_FIELD, None) or raw.pop(keys.META_FIELD.encode(), None)
    if meta_raw is None:
        return None
    meta = json.loads(meta_raw)
    limit = max_age_sec * 1000
    age = _age_ms(int(meta["t"]), int(meta["rt"]), now_ms)
    if age > limit:
        return None
    tickers = {}
    for field, value in raw.items():
        symbol = _text(field)
        ticker = MiniTickerState.from_json(symbol, value)
        if _age_ms(ticker.send_time, ticker.received_at, now_ms) <= limit:
            tickers[symbol] = ticker
    return StreamTickers(tickers, ms_to_datetime(int(meta["t"])), max(0, age) / 1000)


def read_universe(
    redis: Any, prefix: str, max_age_sec: float, *, now_ms: int | None = None
) -> StreamUniverse | None:
    """(last price per symbol, the data's time, its age in seconds) from the stream, or None
    when the stream is down or stale (older than max_age_sec): then use REST. One HGETALL;
    symbols no frame carried within max_age_sec are left out."""
    now_ms = _now_ms() if now_ms is None else now_ms
    raw = redis.hgetall(keys.tickers(prefix))
    meta_raw = raw.pop(keys.META_FIELD, None) or raw.pop(keys.META_FIELD.encode(), None)
    if meta_raw is None:
        return None
    meta = json.loads(meta_raw)
    limit = max_age_sec * 1000
    age = _age_ms(int(meta["t"]), int(meta["rt"]), now_ms)
    if age > limit:
        return None
    prices = {}
    for field, value in raw.items():
        item = json.loads(value)  # only what a price needs: no full MiniTickerState
        price = item.get("p")
        if price and _age_ms(item["t"], item["rt"], now_ms) <= limit:
            number = Decimal(price)
            if number > 0:
                prices[_text(field)] = number
    return StreamUniverse(prices, ms_to_datetime(int(meta["t"])), max(0, age) / 1000)


def read_mini_ticker(
    redis: Any,
    prefix: str,
    symbol: str,
    max_age_sec: float | None = None,
    *,
    now_ms: int | None = None,
) -> MiniTickerState | None:
    raw = redis.hget(keys.tickers(prefix), symbol)
    if raw is None:
        return None
    ticker = MiniTickerState.from_json(symbol, raw)
    return _fresh(ticker, max_age_sec, now_ms)


def _fresh(state: Any, max_age_sec: float | None, now_ms: int | None) -> Any:
    if max_age_sec is None:
        return state
    now_ms = _now_ms() if now_ms is None else now_ms
    if _age_ms(state.send_time, state.received_at, now_ms) > max_age_sec * 1000:
        return None
    return state


def read_book_ticker(
    redis: Any,
    prefix: str,
    symbol: str,
    max_age_sec: float | None = None,
    *,
    now_ms: int | None = None,
) -> BookState | None:
    """The latest best bid/ask of a watched symbol; None when there is none (not watched,
    or gone with its TTL) or it is older than max_age_sec."""
    raw = redis.get(keys.book(prefix, symbol))
    if raw is None:
        return None
    return _fresh(BookState.from_json(symbol, raw), max_age_sec, now_ms)


class StreamKlines(NamedTuple):
    current: KlineState | None  # the 1m candle in progress
    closed: list[KlineState]  # oldest first


def read_klines(redis: Any, prefix: str, symbol: str, limit: int | None = None) -> StreamKlines:
    """A watched symbol's current 1m candle and its last closed ones (at most `limit`),
    oldest first."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(keys.kline(prefix, symbol))
    pipe.lrange(keys.klines(prefix, symbol), 0, -1 if limit is None else max(0, limit - 1))
    current_raw, closed_raw = pipe.execute()
    current = None if current_raw is None else KlineState.from_json(current_raw)
    closed = [KlineState.from_json(item) for item in reversed(closed_raw)]
    return StreamKlines(current, closed)


def read_deals(redis: Any, prefix: str, symbol: str, limit: int | None = None) -> list[DealState]:
    """A watched symbol's last deals (at most `limit`), oldest first."""
    raw = redis.lrange(keys.deals(prefix, symbol), 0, -1 if limit is None else max(0, limit - 1))
    return [DealState.from_json(item) for item in reversed(raw)]


def read_price_history(
    redis: Any, prefix: str, symbol: str, limit: int | None = None
) -> list[tuple[datetime, Decimal]]:
    """A watched symbol's recent last prices, one a second at most, oldest first."""
    raw = redis.lrange(keys.prices(prefix, symbol), 0, -1 if limit is None else max(0, limit - 1))
    out = []
    for item in reversed(raw):
        ms, price = _text(item).split(":", 1)
        out.append((ms_to_datetime(int(ms)), Decimal(price)))
    return out


# ---- health and metrics -----------------------------------------------------------------------


def _live_status(redis: Any, prefix: str, now_ms: int) -> tuple[list[dict], list[dict]]:
    """(live connections, live instances) from the status hash."""
    connections, instances = [], []
    for field, value in redis.hgetall(keys.status(prefix)).items():
        try:
            entry = json.loads(value)
        except ValueError:
            continue
        if now_ms - int(entry.get("updated_ms", 0)) > keys.STATUS_STALE_MS:
            continue
        (connections if _text(field).startswith("conn|") else instances).append(entry)
    connections.sort(key=lambda c: (c.get("shard", ""), c.get("name", ""), c.get("instance", "")))
    instances.sort(key=lambda i: (i.get("shard", ""), i.get("instance", "")))
    return connections, instances


def stream_health(
    redis: Any, prefix: str, *, max_age_sec: float = 10.0, now_ms: int | None = None
) -> dict[str, Any]:
    """For a /health `stream` check: {"status": "ok" | "degraded" | "down", "streamers",
    "connections", "connected", "lag_ms" (the largest), "last_message_age_sec" (the oldest
    among connected connections), "universe_age_sec", "detail"}. "down": no streamer alive or
    none connected; "degraded": a connection down, or data older than max_age_sec."""
    now_ms = _now_ms() if now_ms is None else now_ms
    connections, instances = _live_status(redis, prefix, now_ms)
    connected = [c for c in connections if c.get("connected")]
    ages = [(now_ms - c["last_message_ms"]) / 1000 for c in connected if c.get("last_message_ms")]
    lags = [c["lag_ms"] for c in connected if c.get("lag_ms") is not None]
    meta_raw = redis.hget(keys.tickers(prefix), keys.META_FIELD)
    universe_age = None
    if meta_raw is not None:
        meta = json.loads(meta_raw)
        universe_age = max(0, _age_ms(int(meta["t"]), int(meta["rt"]), now_ms)) / 1000
    problems = []
    if not instances:
        problems.append("no streamer alive")
    elif not connected:
        problems.append("no connection up")
    down = [c["name"] for c in connections if not c.get("connected")]
    if down and connected:
        problems.append(f"{len(down)} of {len(connections)} connections down")
    if ages and max(ages) > max_age_sec:
        problems.append(f"no message for {max(ages):.1f} s")
    if universe_age is not None and universe_age > max_age_sec and connected:
        problems.append(f"mini tickers {universe_age:.1f} s old")
    status = "ok"
    if not instances or not connected:
        status = "down"
    elif problems:
        status = "degraded"
    return {
        "status": status,
        "detail": "; ".join(problems) or "streaming",
        "streamers": len(instances),
        "connections": len(connections),
        "connected": len(connected),
        "lag_ms": max(lags) if lags else None,
        "last_message_age_sec": round(max(ages), 3) if ages else None,
        "universe_age_sec": universe_age,
        "shards": sorted({i.get("shard", "") for i in instances}),
    }


def stream_metrics(redis: Any, prefix: str, *, now_ms: int | None = None) -> dict[str, Any]:
    """For /metrics: cumulative counters (Prometheus counters) and the live figures of the
    streamers alive now (gauges).

    {"messages_total": {kind: n}, "messages_per_sec": {kind: rate over the last ~10 s,
     summed over streamers}, "reconnects_total", "decode_errors_total",
     "refused_subscriptions_total", "handler_errors_total",
     "triggers_total": {"<kind>:<outcome>": n} (outcome sent | duplicate | debounced |
     failed), "lag_ms": {"<instance>|<connection>": last lag}, "lag_ms_max",
     "connections", "connected", "streamers"}"""
    now_ms = _now_ms() if now_ms is None else now_ms
    counters = {_text(k): int(v) for k, v in redis.hgetall(keys.counters(prefix)).items()}
    connections, instances = _live_status(redis, prefix, now_ms)
    rates: dict[str, float] = {}
    for instance in instances:
        for kind, rate in (instance.get("rates") or {}).items():
            rates[kind] = round(rates.get(kind, 0.0) + float(rate), 3)
    lags = {
        f"{c['instance']}|{c['name']}": c["lag_ms"]
        for c in connections
        if c.get("connected") and c.get("lag_ms") is not None
    }
    return {
        "messages_total": {
            k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("messages:")
        },
        "messages_per_sec": rates,
        "reconnects_total": counters.get("reconnects", 0),
        "rotations_total": counters.get("rotations", 0),
        "decode_errors_total": counters.get("decode_errors", 0),
        "refused_subscriptions_total": counters.get("refused_subscriptions", 0),
        "handler_errors_total": counters.get("handler_errors", 0),
        "triggers_total": {
            k.split(":", 1)[1]: v for k, v in counters.items() if k.startswith("triggers:")
        },
        "lag_ms": lags,
        "lag_ms_max": max(lags.values()) if lags else None,
        "connections": len(connections),
        "connected": sum(1 for c in connections if c.get("connected")),
        "streamers": len(instances),
    }
