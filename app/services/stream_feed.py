"""Where the market-data stage meets `cdb stream`: the whole market from the mini-ticker
stream when it is fresh (REST stays the floor and the fallback), and what to watch next.

Every call is best-effort: Redis being away means "no stream", never a failed run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal

import redis

from app.config import Settings
from app.domain.market import Ticker24h
from app.stream import read_mini_tickers, set_stops, set_watched

log = logging.getLogger(__name__)

_clients: dict[str, redis.Redis] = {}


def _redis(settings: Settings) -> redis.Redis:
    client = _clients.get(settings.broker_url)
    if client is None:
        client = _clients[settings.broker_url] = redis.Redis.from_url(
            settings.broker_url, socket_connect_timeout=2, socket_timeout=2
        )
    return client


def forget_clients() -> None:
    """After a fork: the parent's connections must not be shared."""
    _clients.clear()


def stream_tickers(settings: Settings) -> list[Ticker24h] | None:
    """Every symbol's mini ticker as a 24h ticker (price, rolling 24 h high/low and volumes,
    MEXC's send time as close time), or None when the stream is down or older than
    STREAM_MAX_AGE_SEC. Its change is since the start of the UTC+8 day (MEXC's mini ticker
    has no rolling 24 h change); it only ranks symbols while the history is too short."""
    try:
        found = read_mini_tickers(
            _redis(settings), settings.redis_key_prefix, settings.stream_max_age_sec
        )
    except redis.RedisError as exc:
        log.warning("stream unreadable: %s; using REST", type(exc).__name__)
        return None
    if found is None:
        return None
    return [
        Ticker24h(
            symbol=t.symbol,
            last_price=t.price,
            price_change=None,
            price_change_fraction=t.rate,
            prev_close_price=None,
            open_price=None,
            high_price=t.high,
            low_price=t.low,
            bid_price=None,
            bid_qty=None,
            ask_price=None,
            ask_qty=None,
            volume=t.quantity,
            quote_volume=t.volume,
            open_time=None,
            close_time=found.data_time,
        )
        for t in found.tickers.values()
    ]


def tell_streamer(
    settings: Settings, watched: Mapping[str, Decimal], stops: Mapping[str, Decimal]
) -> None:
    """The symbols to watch (selected and held, with the prices this run judged them at) and
    the held positions' stops, for the streamer's tick triggers."""
    try:
        client = _redis(settings)
        set_watched(client, settings.redis_key_prefix, list(watched), prices=dict(watched))
        set_stops(client, settings.redis_key_prefix, dict(stops))
    except redis.RedisError as exc:
        log.warning("could not tell the streamer what to watch: %s", type(exc).__name__)
