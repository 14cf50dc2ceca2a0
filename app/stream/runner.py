"""`cdb stream` as a process: one streamer until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from redis import asyncio as aioredis

from app.config import redact_url
from app.stream.config import from_settings
from app.stream.shards import Shard
from app.stream.streamer import Streamer
from app.stream.triggers import CelerySender

log = logging.getLogger(__name__)


def run_stream(settings: Any, shard: Shard, ws_url: str | None = None) -> int:
    """Stream until SIGTERM/SIGINT; returns the exit code (0). A Redis that cannot be
    reached at start raises redis' error (the CLI turns it into one line)."""
    return asyncio.run(_main(settings, shard, ws_url))


async def _main(settings: Any, shard: Shard, ws_url: str | None) -> int:
    stream_settings = from_settings(settings)
    url = ws_url or stream_settings.mexc_ws_url
    redis = aioredis.Redis.from_url(settings.broker_url, socket_timeout=10)
    sender = CelerySender(settings) if stream_settings.trigger_kinds else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await redis.ping()
        log.info(
            "streaming MEXC market data",
            extra={
                "shard": str(shard),
                "url": url,
                "redis": redact_url(settings.redis_url),
                "triggers": sorted(stream_settings.trigger_kinds),
            },
        )
        streamer = Streamer(stream_settings, redis, shard=shard, url=url, sender=sender)
        await streamer.run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await redis.aclose()
        if sender is not None:
            sender.close()
    return 0
