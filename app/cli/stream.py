"""`cdb stream`: live market state from MEXC's WebSocket streams (app/stream, docs/STREAM.md)."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

import click

from app.cli.base import main, settings
from app.logs import configure_logging


def _shard(ctx: click.Context, param: click.Parameter, value: str):  # type: ignore[no-untyped-def]
    from app.stream.shards import parse_shard

    try:
        return parse_shard(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _ws_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise click.BadParameter(f"{value!r} is not a ws:// or wss:// URL")
    return value


@main.command("stream")
@click.option(
    "--shard",
    default="0/1",
    show_default=True,
    callback=_shard,
    help="Stream the symbols of shard i of n (stable hash of the symbol); shard 0 also "
    "carries every symbol's mini ticker. Run one process per shard (two on one shard are "
    "harmless: tick runs are keyed).",
)
@click.option(
    "--ws-url",
    default=None,
    callback=_ws_url,
    help="MEXC's WebSocket endpoint (default: MEXC_WS_URL, wss://wbs-api.mexc.com/ws).",
)
@click.pass_context
def stream(ctx: click.Context, shard, ws_url: str | None) -> None:  # type: ignore[no-untyped-def]
    """Keep the live market state in Redis from MEXC's spot WebSocket streams and send a
    market-data run when a watched symbol moves, a 1m candle closes or a stop is reached;
    until SIGTERM or Ctrl-C. JSON logs on stderr."""
    from app.stream.runner import run_stream

    config = settings(ctx)
    configure_logging("stream", config.log_level, config.secret_values())
    sys.exit(run_stream(config, shard, ws_url))
