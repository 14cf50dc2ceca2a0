"""The streamer's settings, read from the one Settings object by attribute.

Until these variables are declared in app/config.py (and .env.template), each one falls back
to the default below; once declared there, the validated value is used. Ranges are what
app/config.py should enforce (a value outside falls back to the default with a WARNING, as
for every other variable); `from_settings` applies the same rule here, so a value that got in
unvalidated never reaches the streamer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

log = logging.getLogger(__name__)

MEXC_WS_URL = "wss://wbs-api.mexc.com/ws"
TRIGGER_KINDS = ("move", "candle", "stop")

# name: (default, minimum, maximum, meaning) — what app/config.py should declare.
SETTINGS: dict[str, tuple[Any, Any, Any, str]] = {
    "mexc_ws_url": (MEXC_WS_URL, None, None, "MEXC's spot WebSocket endpoint (ws:// or wss://)"),
    "stream_max_subscriptions": (30, 1, 30, "subscriptions per connection (MEXC allows 30)"),
    "stream_ping_interval_sec": (20.0, 5.0, 50.0, "JSON PING period on every connection"),
    "stream_stall_timeout_sec": (
        20.0,
        3.0,
        55.0,
        "reconnect a subscribed connection that got no data frame for this long",
    ),
    "stream_rotate_after_sec": (
        82_800.0,
        60.0,
        86_000.0,
        "reconnect each connection after this long (MEXC closes them at 24 h)",
    ),
    "stream_backoff_base_sec": (0.5, 0.05, 10.0, "first reconnect delay bound (full jitter)"),
    "stream_backoff_max_sec": (30.0, 1.0, 300.0, "largest reconnect delay bound"),
    "stream_max_age_sec": (
        10.0,
        2.0,
        120.0,
        "stream state older than this is stale: read_universe returns None, /health degrades",
    ),
    "stream_symbol_ttl_sec": (
        120,
        10,
        3600,
        "TTL of a watched symbol's keys: they vanish this long after it stops being watched",
    ),
    "stream_deals_kept": (100, 1, 1000, "last deals kept per watched symbol"),
    "stream_klines_kept": (60, 1, 1440, "closed 1m klines kept per watched symbol"),
    "stream_history_kept": (300, 10, 3600, "price history points per symbol (one a second)"),
    "stream_flush_interval_ms": (250, 50, 2000, "how often the state is written to Redis"),
    "stream_watch_poll_sec": (1.0, 0.2, 30.0, "how often the watched set and stops are read"),
    "stream_triggers": (
        "move,candle,stop",
        None,
        None,
        "which tick triggers send a run: any of move, candle, stop (empty: none)",
    ),
    "stream_move_trigger_pct": (
        Decimal("0.005"),
        Decimal("0.001"),
        Decimal("0.10"),
        "a watched symbol moving this fraction since its last evaluation sends a run",
    ),
    "stream_trigger_min_gap_sec": (
        5.0,
        0.0,
        300.0,
        "at least this long between two tick runs, across all streamers",
    ),
    "stream_trigger_bucket_sec": (
        60,
        5,
        3600,
        "time bucket of a move or stop trigger's task id: one run per symbol and bucket",
    ),
}


@dataclass(frozen=True, slots=True)
class StreamSettings:
    mexc_ws_url: str = MEXC_WS_URL
    stream_max_subscriptions: int = 30
    stream_ping_interval_sec: float = 20.0
    stream_stall_timeout_sec: float = 20.0
    stream_rotate_after_sec: float = 82_800.0
    stream_backoff_base_sec: float = 0.5
    stream_backoff_max_sec: float = 30.0
    stream_max_age_sec: float = 10.0
    stream_symbol_ttl_sec: int = 120
    stream_deals_kept: int = 100
    stream_klines_kept: int = 60
    stream_history_kept: int = 300
    stream_flush_interval_ms: int = 250
    stream_watch_poll_sec: float = 1.0
    stream_triggers: str = "move,candle,stop"
    stream_move_trigger_pct: Decimal = Decimal("0.005")
    stream_trigger_min_gap_sec: float = 5.0
    stream_trigger_bucket_sec: int = 60
    # Not settings: what the process shares with the rest of the system.
    redis_key_prefix: str = ""
    market_data_interval_sec: int = 15  # a tick run not started within this expires

    @property
    def trigger_kinds(self) -> frozenset[str]:
        return parse_trigger_kinds(self.stream_triggers)


def parse_trigger_kinds(text: str) -> frozenset[str]:
    """ "move,candle,stop" -> the set; ValueError names an unknown kind."""
    kinds = frozenset(part.strip().lower() for part in str(text).split(",") if part.strip())
    unknown = sorted(kinds - set(TRIGGER_KINDS))
    if unknown:
        raise ValueError(
            f"unknown stream trigger {', '.join(unknown)}; use any of {', '.join(TRIGGER_KINDS)}"
        )
    return kinds


def _in_range(name: str, value: Any) -> Any:
    default, low, high, _ = SETTINGS[name]
    try:
        value = type(default)(value)
    except (TypeError, ValueError, ArithmeticError):
        log.warning(
            "%s=%r is not a valid value; using the default %s",
            name.upper(),
            value,
            default,
            extra={"variable": name.upper(), "value": str(value), "default": str(default)},
        )
        return default
    if (low is not None and value < low) or (high is not None and value > high):
        log.warning(
            "%s=%s is outside %s..%s; using the default %s",
            name.upper(),
            value,
            low,
            high,
            default,
            extra={"variable": name.upper(), "value": str(value), "default": str(default)},
        )
        return default
    return value


def from_settings(settings: Any, **overrides: Any) -> StreamSettings:
    """The stream settings of `settings` (app.config.Settings), defaults where it has none."""
    values: dict[str, Any] = {}
    for field in fields(StreamSettings):
        name = field.name
        if name in SETTINGS:
            raw = getattr(settings, name, SETTINGS[name][0])
            values[name] = _in_range(name, raw)
        elif hasattr(settings, name):
            values[name] = getattr(settings, name)
    try:
        parse_trigger_kinds(values.get("stream_triggers", ""))
    except ValueError as exc:
        log.warning("STREAM_TRIGGERS: %s; using the default", exc)
        values["stream_triggers"] = SETTINGS["stream_triggers"][0]
    values.update(overrides)
    return StreamSettings(**values)
