"""Live market state from MEXC's WebSocket streams (`cdb stream`); see docs/STREAM.md.

What the rest of the system calls (plain functions over a synchronous redis client):

    set_watched(redis, prefix, symbols, prices=...)    the market-data stage, every run
    set_stops(redis, prefix, {symbol: stop})           the market-data stage, every run
    read_universe(redis, prefix, max_age_sec)          -> (prices, data_time, age) | None
    read_mini_tickers / read_book_ticker / read_klines / read_deals / read_price_history
    stream_health(redis, prefix)                       /health's `stream` check
    stream_metrics(redis, prefix)                      /metrics

Modules: config (settings and defaults), channels (names, control answers), shards (stable
hash, connection plan), backoff, keys (the Redis layout), records (stored values), state (the
functions above), market (one symbol in memory), writer (batched Redis writes), triggers
(tick runs), connection (one WebSocket), streamer (all of it), runner (the process).
"""

from app.stream.state import (
    StreamKlines,
    StreamTickers,
    StreamUniverse,
    Watched,
    read_book_ticker,
    read_deals,
    read_klines,
    read_mini_ticker,
    read_mini_tickers,
    read_price_history,
    read_stops,
    read_universe,
    read_watched,
    set_stops,
    set_watched,
    stream_health,
    stream_metrics,
)

__all__ = [
    "StreamKlines",
    "StreamTickers",
    "StreamUniverse",
    "Watched",
    "read_book_ticker",
    "read_deals",
    "read_klines",
    "read_mini_ticker",
    "read_mini_tickers",
    "read_price_history",
    "read_stops",
    "read_universe",
    "read_watched",
    "set_stops",
    "set_watched",
    "stream_health",
    "stream_metrics",
]
