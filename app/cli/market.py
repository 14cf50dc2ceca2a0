"""`cdb market …` (ask MEXC) and `cdb market-data run` (the market-data stage)."""

from __future__ import annotations

import uuid
from dataclasses import asdict

import click

from app.cli.base import (
    EXIT_FAILED,
    app_database,
    celery_app,
    emit,
    main,
    now,
    settings,
)


@main.group()
def market() -> None:
    """Ask MEXC (MEXC_BASE_URL) for public market data."""


def _client(ctx: click.Context):  # type: ignore[no-untyped-def]
    from app.services.exchange import make_client

    return make_client(settings(ctx))


@market.command("symbols")
@click.option("--all", "show_all", is_flag=True, help="Include paused and offline markets.")
@click.pass_context
def market_symbols(ctx: click.Context, show_all: bool) -> None:
    """Tradable markets with their trading rules."""
    with _client(ctx) as client:
        markets = client.exchange_info()
    emit(
        [
            {
                "symbol": m.symbol,
                "base": m.base_asset,
                "quote": m.quote_asset,
                "status": m.status,
                "min_notional": m.min_notional,
                "min_qty": m.min_qty,
                "price_precision": m.quote_asset_precision,
                "qty_precision": m.base_asset_precision,
                "taker_fee": m.taker_commission,
                "maker_fee": m.maker_commission,
            }
            for m in markets
            if show_all or m.is_tradable
        ]
    )


@market.command("tickers")
@click.option("--symbols", default="", help="Comma list, e.g. BTCUSDT,ETHUSDT (default: all).")
@click.pass_context
def market_tickers(ctx: click.Context, symbols: str) -> None:
    """24h tickers; price_change_pct is in percent."""
    wanted = [s.strip().upper() for s in symbols.split(",") if s.strip()]
    with _client(ctx) as client:
        tickers = [client.ticker_24h(s) for s in wanted] if wanted else client.tickers_24h()
    emit(
        [
            {
                "symbol": t.symbol,
                "last_price": t.last_price,
                "bid": t.bid_price,
                "ask": t.ask_price,
                "price_change_pct": t.price_change_pct,
                "volume": t.volume,
                "quote_volume": t.quote_volume,
                "close_time": t.close_time,
            }
            for t in tickers
        ]
    )


@market.command("klines")
@click.argument("symbol")
@click.option("--interval", default="1m", show_default=True, help="1m 5m 15m 30m 60m 4h 1d 1W 1M")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
def market_klines(ctx: click.Context, symbol: str, interval: str, limit: int) -> None:
    """Candles, oldest first."""
    with _client(ctx) as client:
        klines = client.klines(symbol.upper(), interval, limit=limit)
    emit([k._asdict() for k in klines])


@market.command("book")
@click.argument("symbol")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 5000))
@click.pass_context
def market_book(ctx: click.Context, symbol: str, limit: int) -> None:
    """Order book: bids and asks as [price, qty], best first."""
    with _client(ctx) as client:
        book = client.depth(symbol.upper(), limit=limit)
    emit(
        {
            "symbol": book.symbol,
            "last_update_id": book.last_update_id,
            "bids": [list(level) for level in book.bids],
            "asks": [list(level) for level in book.asks],
        }
    )


@main.group("market-data")
def market_data() -> None:
    """The market-data stage."""


@market_data.command("run")
@click.option(
    "--enqueue",
    is_flag=True,
    help="Send the task to the market_data queue (the workers run it and the rest of the "
    "pipeline follows) instead of running it here.",
)
@click.pass_context
def market_data_run(ctx: click.Context, enqueue: bool) -> int:
    """Run one market-data pass now and print its record."""
    if enqueue:
        from app.services.operator import Actor, run_pipeline

        config, database = app_database(ctx)
        task_id = run_pipeline(database, celery_app(config), Actor.cli())
        emit({"task_id": task_id, "queue": "market_data"})
        return 0

    from app.services.exchange import make_client
    from app.services.market_data import run_market_data

    config, database = app_database(ctx)
    retries: list = []
    with make_client(config, on_retry=retries.append) as client:
        summary = run_market_data(
            database,
            config,
            client,
            run_key=f"cli-{uuid.uuid4()}",
            trigger="cli",
            clock=now,
            retries=retries,
        )
    emit(asdict(summary))
    return EXIT_FAILED if summary.status == "failed" else 0
