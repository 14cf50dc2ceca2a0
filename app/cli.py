"""`cdb`: the command line for people and scripts. Data goes to stdout as JSON."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import click

from app.config import Settings, SettingsError, load_settings, redact_url
from app.logs import configure_logging

log = logging.getLogger("app.cli")


def _settings(ctx: click.Context) -> Settings:
    if ctx.obj is None:
        try:
            ctx.obj = load_settings()
        except SettingsError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        configure_logging("cli", "WARNING", ctx.obj.secret_values())
        ctx.obj.state_dir.mkdir(parents=True, exist_ok=True)
    return ctx.obj


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return iso_utc(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@contextmanager
def _exchange_errors() -> Iterator[None]:
    """MEXC's "no such symbol/interval" is the caller's mistake: exit 2 with MEXC's words."""
    from app.exchange.errors import (
        ExchangeError,
        InvalidIntervalError,
        InvalidSymbolError,
    )

    try:
        yield
    except (InvalidSymbolError, InvalidIntervalError) as exc:
        click.echo(f"error: {exc.exchange_message or exc} (MEXC code {exc.code})", err=True)
        sys.exit(2)
    except ExchangeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@contextmanager
def _database_errors(url: str) -> Iterator[None]:
    from sqlalchemy.exc import OperationalError

    try:
        yield
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        click.echo(f"error: cannot use the database {redact_url(url)}: {reason}", err=True)
        sys.exit(1)


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Claire de Binaire: paper trading on MEXC, as a Celery pipeline."""


# --- database -------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from app import migrate

    url = _settings(ctx).sqlalchemy_url
    with _database_errors(url):
        migrate.upgrade(url, revision)
        _emit({"database": redact_url(url), "revision": migrate.current_revision(url)})


@db.command("downgrade")
@click.argument("revision")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Revert migrations down to REVISION ("base" removes every table)."""
    from app import migrate

    url = _settings(ctx).sqlalchemy_url
    with _database_errors(url):
        migrate.downgrade(url, revision)
        _emit({"database": redact_url(url), "revision": migrate.current_revision(url)})


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the applied and the newest revision."""
    from app import migrate

    url = _settings(ctx).sqlalchemy_url
    with _database_errors(url):
        revision = migrate.current_revision(url)
    _emit(
        {"database": redact_url(url), "revision": revision, "head": list(migrate.head_revisions())}
    )


# --- market data from MEXC ------------------------------------------------------------


@main.group()
def market() -> None:
    """Ask MEXC (MEXC_BASE_URL) for public market data."""


def _client(ctx: click.Context):  # type: ignore[no-untyped-def]
    from app.services.exchange import make_client

    return make_client(_settings(ctx))


@market.command("symbols")
@click.option("--all", "show_all", is_flag=True, help="Include paused and offline markets.")
@click.pass_context
def market_symbols(ctx: click.Context, show_all: bool) -> None:
    """Tradable markets with their trading rules."""
    with _exchange_errors(), _client(ctx) as client:
        markets = client.exchange_info()
    _emit(
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
    with _exchange_errors(), _client(ctx) as client:
        tickers = [client.ticker_24h(s) for s in wanted] if wanted else client.tickers_24h()
    _emit(
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
    with _exchange_errors(), _client(ctx) as client:
        klines = client.klines(symbol.upper(), interval, limit=limit)
    _emit([asdict(k) for k in klines])


@market.command("book")
@click.argument("symbol")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 5000))
@click.pass_context
def market_book(ctx: click.Context, symbol: str, limit: int) -> None:
    """Order book: bids and asks as [price, qty], best first."""
    with _exchange_errors(), _client(ctx) as client:
        book = client.depth(symbol.upper(), limit=limit)
    _emit(
        {
            "symbol": book.symbol,
            "last_update_id": book.last_update_id,
            "bids": [list(level) for level in book.bids],
            "asks": [list(level) for level in book.asks],
        }
    )


# --- the market-data stage --------------------------------------------------------------


@main.group("market-data")
def market_data() -> None:
    """The market-data stage."""


@market_data.command("run")
@click.option("--enqueue", is_flag=True, help="Send the task to the market_data queue instead.")
@click.pass_context
def market_data_run(ctx: click.Context, enqueue: bool) -> None:
    """Run one market-data pass now and print its record."""
    settings = _settings(ctx)
    if enqueue:
        from app import create_app

        celery = create_app(settings).extensions["celery"]
        import celeryconfig

        result = celery.send_task(celeryconfig.MARKET_DATA_TASK, kwargs={"trigger": "manual"})
        _emit({"task_id": result.id, "queue": "market_data"})
        return

    from app.services.exchange import make_client
    from app.services.market_data import run_market_data

    settings, database = _app(ctx)
    retries: list = []
    with make_client(settings, on_retry=retries.append) as client:
        summary = run_market_data(
            database,
            settings,
            client,
            run_key=f"cli-{uuid.uuid4()}",
            trigger="cli",
            clock=lambda: datetime.now(UTC),
            retries=retries,
        )
    _emit(asdict(summary))
    if summary.status == "failed":
        sys.exit(1)


# --- the trading pipeline ----------------------------------------------------------------


def _app(ctx: click.Context):  # type: ignore[no-untyped-def]
    """Settings, the bound database, after checking the schema is current."""
    from app import create_app, migrate
    from app.extensions import db as database

    settings = _settings(ctx)
    with _database_errors(settings.sqlalchemy_url):
        revision = migrate.current_revision(settings.sqlalchemy_url)
    if revision not in migrate.head_revisions():
        click.echo("error: the database schema is not up to date; run `cdb db upgrade`", err=True)
        sys.exit(1)
    create_app(settings)
    return settings, database


def _now() -> datetime:
    return datetime.now(UTC)


@main.group()
def pipeline() -> None:
    """The whole pipeline: market data → signals → risk → execution."""


@pipeline.command("run-once")
@click.pass_context
def pipeline_run_once(ctx: click.Context) -> None:
    """One full pass in this process, without Celery; prints what happened."""
    from app.services.exchange import make_client
    from app.services.pipeline import run_once

    settings, database = _app(ctx)
    with _exchange_errors(), make_client(settings) as client:
        _emit(run_once(database, settings, client, _now))


@main.command("portfolio")
@click.pass_context
def portfolio(ctx: click.Context) -> None:
    """Cash, positions with unrealised PnL, equity, exposure, today's drawdown, halted or not."""
    from app.services.queries import portfolio_summary

    _, database = _app(ctx)
    with database.transaction() as session:
        summary = portfolio_summary(session, _now())
    _emit(summary or {"error": "no portfolio yet: nothing has been traded"})


@main.command("orders")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.pass_context
def orders(ctx: click.Context, limit: int) -> None:
    """Newest orders first, with their fills."""
    from app.services.queries import list_orders

    _, database = _app(ctx)
    with database.transaction() as session:
        _emit(list_orders(session, limit))


@main.command("trace")
@click.argument("order_id", type=int)
@click.pass_context
def trace_order(ctx: click.Context, order_id: int) -> None:
    """An order with its signal, market data, every risk layer's verdict, fill and task ids."""
    from app.services.queries import trace

    _, database = _app(ctx)
    with database.transaction() as session:
        found = trace(session, order_id)
    if found is None:
        click.echo(f"error: no order {order_id}", err=True)
        sys.exit(2)
    _emit(found)


@main.command("alerts")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.pass_context
def list_alerts(ctx: click.Context, limit: int) -> None:
    """Newest alerts first."""
    from app.services.queries import alerts

    _, database = _app(ctx)
    with database.transaction() as session:
        _emit(alerts(session, limit))


@main.command("stats")
@click.pass_context
def stats(ctx: click.Context) -> None:
    """Trades per day, average signal → order latency, win rate, equity curve."""
    from app.services.queries import statistics

    _, database = _app(ctx)
    with database.transaction() as session:
        _emit(statistics(session))


@main.command("export")
@click.argument("file", type=click.File("w"))
@click.option("--from-run", type=int, help="First market-data run id (default: the first).")
@click.option("--to-run", type=int, help="Last market-data run id (default: the last).")
@click.pass_context
def export(ctx: click.Context, file, from_run: int | None, to_run: int | None) -> None:  # type: ignore[no-untyped-def]
    """Write recorded market-data runs to FILE (JSON lines) for `cdb replay`."""
    from app.services.replay import export_session

    settings, database = _app(ctx)
    count = export_session(database, settings, file, from_run, to_run)
    _emit({"file": file.name, "runs": count})


@main.command("replay")
@click.argument("file", type=click.File("r"))
@click.pass_context
def replay(ctx: click.Context, file) -> None:  # type: ignore[no-untyped-def]
    """Feed a recorded session through signals, risk and execution; print the summary.

    Runs on a throwaway database with the data's clock: the same file always gives the
    same decisions and fills (compare the digest)."""
    from app.services.replay import ReplayError, replay_session

    settings = _settings(ctx)

    def progress(runs: int) -> None:
        if runs % 10 == 0:
            click.echo(f"replayed {runs} runs", err=True)

    try:
        _emit(replay_session(settings, file, progress))
    except ReplayError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@main.group()
def tasks() -> None:
    """Recorded Celery task runs, and re-running one by hand."""


@tasks.command("list")
@click.option("--name", help="Only this task, e.g. cdb.execution.run.")
@click.option("--state", help="Only this state: PENDING, STARTED, SUCCESS, FAILURE.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000))
@click.pass_context
def tasks_list(ctx: click.Context, name: str | None, state: str | None, limit: int) -> None:
    """Newest task runs first."""
    from sqlalchemy import select

    from app.models import TaskRun

    _, database = _app(ctx)
    query = select(TaskRun).order_by(TaskRun.started_at.desc(), TaskRun.id.desc()).limit(limit)
    if name:
        query = query.where(TaskRun.name == name)
    if state:
        query = query.where(TaskRun.state == state.upper())
    with database.transaction() as session:
        _emit(
            [
                {
                    "task_id": r.task_id,
                    "name": r.name,
                    "queue": r.queue,
                    "args": r.args,
                    "kwargs": r.kwargs,
                    "state": r.state,
                    "started_at": r.started_at,
                    "runtime_ms": r.runtime_ms,
                    "error": r.error,
                    "rerun_of": r.rerun_of,
                    "attempts": r.attempts,
                }
                for r in session.scalars(query)
            ]
        )


@tasks.command("rerun")
@click.argument("task_id")
@click.pass_context
def tasks_rerun(ctx: click.Context, task_id: str) -> None:
    """Send TASK_ID's task again with the same arguments, as a new run linked to it."""
    from app import create_app
    from app.services.task_runs import TaskRunNotFound, rerun

    settings, database = _app(ctx)
    celery = create_app(settings).extensions["celery"]
    try:
        new_id = rerun(database, celery, task_id)
    except TaskRunNotFound as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    _emit({"task_id": new_id, "rerun_of": task_id})


@main.group()
def risk() -> None:
    """Operator controls: halt, resume, release a drawdown halt."""


def _risk_action(ctx: click.Context, action: str, reason: str | None = None) -> None:
    from app.services.risk import operator_action

    settings, database = _app(ctx)
    try:
        _emit(operator_action(database, settings, action, _now, reason))
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@risk.command("halt")
@click.option("--reason", required=True, help="Why; recorded in the audit trail.")
@click.pass_context
def risk_halt(ctx: click.Context, reason: str) -> None:
    """Stop all new orders until `cdb risk resume`."""
    _risk_action(ctx, "halt", reason)


@risk.command("resume")
@click.pass_context
def risk_resume(ctx: click.Context) -> None:
    """Lift an operator halt and any pause (not a drawdown halt)."""
    _risk_action(ctx, "resume")


@risk.command("release-drawdown")
@click.pass_context
def risk_release(ctx: click.Context) -> None:
    """Release a daily-drawdown (or circuit-breaker) halt."""
    _risk_action(ctx, "release-drawdown")


# --- simulator and local run ---------------------------------------------------------


@main.command("mexc-sim")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--symbols", default=50, show_default=True, type=click.IntRange(1, 5000))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--weight-limit", default=500, show_default=True, type=click.IntRange(1))
@click.option(
    "--fault",
    "faults",
    multiple=True,
    help="Inject a fault, e.g. rate_limit:count=3,retry_after=2 (repeatable).",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    help="Move a market, e.g. BTCUSDT:price_factor=0.8,spread_factor=5 (repeatable).",
)
def mexc_sim(
    host: str,
    port: int,
    symbols: int,
    seed: int,
    weight_limit: int,
    faults: tuple[str, ...],
    scenarios: tuple[str, ...],
) -> None:
    """Serve a deterministic simulated MEXC spot API on HOST:PORT."""
    from app.exchange.simulator import parse_scenario_spec, run_simulator
    from app.exchange.simulator.faults import parse_fault_spec

    configure_logging("mexc-sim", "INFO")
    for option, parse, specs in (
        ("--fault", parse_fault_spec, faults),
        ("--scenario", parse_scenario_spec, scenarios),
    ):
        for spec in specs:
            try:
                parse(spec)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint=option) from None
    try:
        run_simulator(host, port, symbols, seed, list(faults), weight_limit, list(scenarios))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scenario") from None


@main.command("up")
@click.option("--mexc-sim", "use_sim", is_flag=True, help="Run against the built-in simulator.")
@click.option("--sim-symbols", default=200, show_default=True, type=click.IntRange(1, 5000))
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 64))
@click.pass_context
def up(ctx: click.Context, use_sim: bool, sim_symbols: int, concurrency: int) -> None:
    """Migrate, then run worker(s) and beat (and the simulator) until Ctrl-C or SIGTERM."""
    from app.supervisor import run_local_stack

    settings = _settings(ctx)
    configure_logging("cdb-up", settings.log_level, settings.secret_values())
    sys.exit(run_local_stack(settings, use_sim, sim_symbols, concurrency))


if __name__ == "__main__":
    main(prog_name="cdb")
