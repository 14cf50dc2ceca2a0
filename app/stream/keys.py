"""The Redis key layout of the live market state, all under `<REDIS_KEY_PREFIX>cdb:stream:`.

watched               string  JSON {"symbols": [...], "prices": {...}, "at": ms}: what the
                              market-data stage screened + holds (set_watched; 1 day TTL)
stops                 hash    symbol -> stop price of a held position (set_stops; 1 day)
tickers               hash    symbol -> JSON mini ticker {"p","r","zr","h","l","v","q",
                              "t" (MEXC sendTime ms), "rt" (receipt ms)}; field "_meta"
                              -> {"t","rt","n"} of the newest frame. One HGETALL reads the
                              whole market. Symbols no frame carried for the symbol TTL
                              are removed; the key lives max(1 h, 10 x the symbol TTL).
book:<S>              string  JSON latest book ticker {"b","bq","a","aq","ver","t","rt"}
deals:<S>             list    JSON deals, newest first, capped (stream_deals_kept)
kline:<S>             string  JSON current 1m candle
klines:<S>            list    JSON closed 1m candles, newest first (stream_klines_kept)
prices:<S>            list    "ms:price", newest first, one a second (stream_history_kept)
                              -- every per-symbol key has the symbol TTL, refreshed on
                              every write: a symbol no longer watched disappears.
status                hash    "conn|<instance>|<name>" -> JSON connection status;
                              "instance|<instance>" -> JSON streamer status (rates,
                              triggers); entries not refreshed for STATUS_STALE_MS are
                              dead. The key expires STATUS_TTL_SEC after the last write.
counters              hash    cumulative counters for /metrics: "messages:<kind>",
                              "reconnects", "rotations", "decode_errors",
                              "refused_subscriptions", "handler_errors",
                              "triggers:<kind>:<outcome>" (7 days TTL)
trigger:<task id>     string  a tick trigger already sent (SET NX, PX ~ two buckets)
trigger-gap           string  the last tick run's task id (PX = the minimum gap)
"""

from __future__ import annotations

BASE = "cdb:stream:"
META_FIELD = "_meta"
STATUS_STALE_MS = 10_000
STATUS_TTL_SEC = 60
WATCH_TTL_SEC = 86_400
COUNTERS_TTL_SEC = 7 * 86_400


def key(prefix: str, name: str) -> str:
    return f"{prefix}{BASE}{name}"


def watched(prefix: str) -> str:
    return key(prefix, "watched")


def stops(prefix: str) -> str:
    return key(prefix, "stops")


def tickers(prefix: str) -> str:
    return key(prefix, "tickers")


def book(prefix: str, symbol: str) -> str:
    return key(prefix, f"book:{symbol}")


def deals(prefix: str, symbol: str) -> str:
    return key(prefix, f"deals:{symbol}")


def kline(prefix: str, symbol: str) -> str:
    return key(prefix, f"kline:{symbol}")


def klines(prefix: str, symbol: str) -> str:
    return key(prefix, f"klines:{symbol}")


def prices(prefix: str, symbol: str) -> str:
    return key(prefix, f"prices:{symbol}")


def status(prefix: str) -> str:
    return key(prefix, "status")


def counters(prefix: str) -> str:
    return key(prefix, "counters")


def trigger(prefix: str, task_id: str) -> str:
    return key(prefix, f"trigger:{task_id}")


def trigger_gap(prefix: str) -> str:
    return key(prefix, "trigger-gap")


def connection_field(instance: str, name: str) -> str:
    return f"conn|{instance}|{name}"


def instance_field(instance: str) -> str:
    return f"instance|{instance}"
