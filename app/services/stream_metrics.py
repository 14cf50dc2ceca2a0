"""The streamer's figures for /metrics, read from Redis at scrape time (`cdb stream` keeps
them there, so they count once however many streamers run)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.config import Settings
from app.stream import stream_metrics

log = logging.getLogger(__name__)


def stream_families(found: dict[str, Any]) -> Iterator[Any]:
    messages = CounterMetricFamily(
        "cdb_stream_messages", "Stream frames received, by channel", labels=["channel"]
    )
    for channel, count in sorted(found["messages_total"].items()):
        messages.add_metric([channel], count)
    yield messages
    rates = GaugeMetricFamily(
        "cdb_stream_messages_per_second",
        "Stream frames per second over the last ~10 s, by channel",
        labels=["channel"],
    )
    for channel, rate in sorted(found["messages_per_sec"].items()):
        rates.add_metric([channel], rate)
    yield rates
    for name, key, documentation in (
        ("cdb_stream_reconnects", "reconnects_total", "Stream connections reopened after a loss"),
        ("cdb_stream_rotations", "rotations_total", "Stream connections renewed before 24 h"),
        ("cdb_stream_decode_errors", "decode_errors_total", "Stream frames that did not decode"),
        (
            "cdb_stream_refused_subscriptions",
            "refused_subscriptions_total",
            "Subscriptions MEXC refused",
        ),
    ):
        yield CounterMetricFamily(name, documentation, value=found[key])
    triggers = CounterMetricFamily(
        "cdb_stream_triggers",
        "Tick triggers, by kind and outcome (sent, duplicate, debounced, failed)",
        labels=["kind", "outcome"],
    )
    for key, count in sorted(found["triggers_total"].items()):
        kind, _, outcome = key.partition(":")
        triggers.add_metric([kind, outcome], count)
    yield triggers
    lag = GaugeMetricFamily(
        "cdb_stream_lag_seconds",
        "From MEXC's send time to receipt, per live connection",
        labels=["connection"],
    )
    for connection, ms in sorted(found["lag_ms"].items()):
        lag.add_metric([connection], ms / 1000)
    yield lag
    for name, key, documentation in (
        ("cdb_stream_streamers", "streamers", "Streamers alive"),
        ("cdb_stream_connections", "connections", "Stream connections"),
        ("cdb_stream_connected", "connected", "Stream connections up"),
    ):
        yield GaugeMetricFamily(name, documentation, value=found[key])


class StreamCollector(Collector):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = redis.Redis.from_url(
            settings.broker_url, socket_connect_timeout=1, socket_timeout=1
        )

    def collect(self) -> Iterator[Any]:
        try:
            found = stream_metrics(self.client, self.settings.redis_key_prefix)
        except redis.RedisError as exc:
            log.warning("metrics: cannot read the stream state: %s", type(exc).__name__)
            found = None
        yield GaugeMetricFamily(
            "cdb_stream_state_up",
            "1 when /metrics could read the streamer's state in Redis at this scrape",
            value=0.0 if found is None else 1.0,
        )
        if found is not None:
            yield from stream_families(found)
