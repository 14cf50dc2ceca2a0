"""The trading pipeline from the command line: one pass, and what it did and why."""

from __future__ import annotations

import click

from app.cli import views
from app.cli.base import (
    EXIT_USAGE,
    app_database,
    emit,
    exact_option,
    fail,
    main,
    now,
)

account_option = click.option(
    "--account",
    "account_id",
    type=click.IntRange(1),
    help="A paper account's id (`cdb paper accounts`); default: the active one.",
)


def _shape(session, symbols, exact: bool) -> views.Shape:  # type: ignore[no-untyped-def]
    from app.services.market_view import precisions

    return views.Shape(precisions(session, symbols), exact)


@main.group()
def pipeline() -> None:
    """The whole pipeline: market data → signals → risk → execution."""


@pipeline.command("run-once")
@exact_option
@click.pass_context
def pipeline_run_once(ctx: click.Context, exact: bool) -> None:
    """One full pass in this process, without Celery; prints what happened and why."""
    from app.services.decisions import run_summary
    from app.services.exchange import make_client
    from app.services.pipeline import run_once

    config, database = app_database(ctx)
    with make_client(config) as client:
        result = run_once(database, config, client, now)
    with database.transaction() as session:
        summary = run_summary(session, result["run_id"])
        assert summary is not None
        shape = _shape(session, [d.symbol for d in summary.decisions], exact)
        emit(result | {"why": views.run_summary(summary, shape)})


@main.command("portfolio")
@account_option
@exact_option
@click.pass_context
def portfolio(ctx: click.Context, account_id: int | None, exact: bool) -> None:
    """Cash, positions with unrealised PnL and stop, equity, exposure, today's drawdown,
    halted or not (money in USDT, `_pct` in percent)."""
    from app.services.queries import portfolio_summary

    _, database = app_database(ctx)
    with database.transaction() as session:
        summary = portfolio_summary(session, now(), account_id)
        if summary is None:
            if account_id is not None:
                fail(f"no paper account {account_id} (`cdb paper accounts` lists them)", EXIT_USAGE)
            emit({"account": None, "note": "no paper account yet: nothing has been traded"})
            return
        shape = _shape(session, [p["symbol"] for p in summary["positions"]], exact)
        emit(views.portfolio(summary, shape))


@main.command("orders")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@account_option
@exact_option
@click.pass_context
def orders(ctx: click.Context, limit: int, account_id: int | None, exact: bool) -> None:
    """Newest orders first: requested and filled quantity, price and notional (USDT)."""
    from app.services.queries import list_orders

    _, database = app_database(ctx)
    with database.transaction() as session:
        rows = list_orders(session, limit, account_id)
        shape = _shape(session, [r["symbol"] for r in rows], exact)
        emit([views.order(r, shape) for r in rows])


@main.command("trace")
@click.argument("order_id", type=click.IntRange(1))
@exact_option
@click.pass_context
def trace_order(ctx: click.Context, order_id: int, exact: bool) -> None:
    """An order with its signal, market data, every risk layer's verdict, fill and task ids."""
    from app.services.queries import trace

    _, database = app_database(ctx)
    with database.transaction() as session:
        found = trace(session, order_id)
        if found is None:
            fail(f"no order {order_id} (`cdb orders` lists them)", EXIT_USAGE)
        shape = _shape(session, [found["order"]["symbol"]], exact)
        emit(views.trace(found, shape))


@main.command("explain")
@click.argument("symbol", required=False)
@click.option("--run", "run_id", type=click.IntRange(1), help="A market-data run's id.")
@click.option(
    "--runs",
    default=5,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="With SYMBOL: how many of the newest runs.",
)
@exact_option
@click.pass_context
def explain(
    ctx: click.Context, symbol: str | None, run_id: int | None, runs: int, exact: bool
) -> None:
    """Why did (or didn't) the bot trade? Without SYMBOL: every symbol of the newest run (or
    --run N); with SYMBOL: that symbol in each of the newest --runs runs, including the runs
    where it was screened out or its data rejected."""
    from app.config import SYMBOL_PATTERN
    from app.services.decisions import explain as explain_symbol
    from app.services.decisions import run_summary

    config, database = app_database(ctx)
    with database.transaction() as session:
        if symbol is None:
            summary = run_summary(session, run_id)
            if summary is None:
                if run_id is not None:
                    fail(f"no market-data run {run_id}", EXIT_USAGE)
                emit({"run_id": None, "summary": "no market-data run yet"})
                return
            shape = _shape(session, [d.symbol for d in summary.decisions], exact)
            emit(views.run_summary(summary, shape))
            return
        symbol = symbol.strip().upper()
        if not SYMBOL_PATTERN.fullmatch(symbol):
            fail(f"{symbol!r} is not a MEXC spot symbol (e.g. BTCUSDT)", EXIT_USAGE)
        if run_id is not None:
            fail("give either SYMBOL or --run, not both", EXIT_USAGE)
        decisions = explain_symbol(session, symbol, runs, config.strategy)
        shape = _shape(session, [symbol], exact)
        emit(
            {
                "symbol": symbol,
                "runs": [{"summary": d.summary} | views.decision(d, shape) for d in decisions],
            }
        )


@main.command("alerts")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.pass_context
def list_alerts(ctx: click.Context, limit: int) -> None:
    """Newest alerts first."""
    from app.services.queries import alerts

    _, database = app_database(ctx)
    with database.transaction() as session:
        emit(alerts(session, limit))


@main.command("stats")
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(1, 100000),
    help="How many of the newest equity-curve points to print.",
)
@account_option
@exact_option
@click.pass_context
def stats(ctx: click.Context, limit: int, account_id: int | None, exact: bool) -> None:
    """Trades per day, average signal → order latency, win rate, equity curve."""
    from app.services.queries import statistics

    _, database = app_database(ctx)
    with database.transaction() as session:
        found = statistics(session, account_id)
    if found["account_id"] is None and account_id is not None:
        fail(f"no paper account {account_id} (`cdb paper accounts` lists them)", EXIT_USAGE)
    emit(views.stats(found, exact, limit))
