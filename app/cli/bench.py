"""`cdb bench`: the performance harness (the top-level `bench` package of a source checkout)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import click

from app.cli.base import fail, json_default, main, settings
from app.paths import checkout_root

SECTIONS = ("baseline", "pipeline", "universe", "scrape", "memory", "storage")
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _bench_package():  # type: ignore[no-untyped-def]
    """`bench` lives beside `app` in a checkout, which the console script does not put on
    sys.path: put it first (so no other `bench` module on the path shadows it)."""
    root = checkout_root()
    if root is None or not (root / "bench" / "runner.py").is_file():
        fail(
            "cdb bench needs a source checkout (the bench/ folder beside app/); run it from a "
            "clone of the repository"
        )
    if sys.path[:1] != [str(root)]:
        sys.path.insert(0, str(root))
    loaded = sys.modules.get("bench")
    if loaded is not None and Path(loaded.__file__ or "").resolve().parent != root / "bench":
        for name in [n for n in sys.modules if n == "bench" or n.startswith("bench.")]:
            del sys.modules[name]
    return importlib.import_module("bench.runner")


def _memory_runs(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        first, second = (int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter("give two run counts, e.g. 1000,10000") from None
    if not 0 < first < second:
        raise click.BadParameter("give two run counts, the first smaller, e.g. 1000,10000")
    return first, second


@main.command("bench")
@click.option("--quick", is_flag=True, help="Smaller sizes, under five minutes (CI's smoke run).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--sqlite", is_flag=True, help="The embedded SQLite instead of PostgreSQL.")
@click.option(
    "--section",
    "sections",
    multiple=True,
    type=click.Choice(SECTIONS),
    help="Run only this section (repeatable; default: all of them).",
)
@click.option(
    "--skip", multiple=True, type=click.Choice(SECTIONS), help="Leave a section out (repeatable)."
)
@click.option("--runs", type=click.IntRange(1), help="Pipeline runs per market [100; quick 30].")
@click.option(
    "--baseline-chains",
    type=click.IntRange(1),
    help="Baseline chains on each worker, between the runs [200; 100].",
)
@click.option("--warmup-runs", type=click.IntRange(1), help="Unmeasured runs first [5].")
@click.option(
    "--universe-symbols", type=click.IntRange(1, 5000), help="Universe simulator symbols [2500]."
)
@click.option(
    "--universe-runs", type=click.IntRange(1), help="Universe cycles per TOP_N phase [40; quick 3]."
)
@click.option("--scrape-orders", type=click.IntRange(1), help="Orders (and fills) stored [100000].")
@click.option(
    "--scrape-requests", type=click.IntRange(1), help="/metrics requests per phase [200; 60]."
)
@click.option(
    "--health-samples", type=click.IntRange(1), help="/health answers under load [300; 60]."
)
@click.option(
    "--memory-runs",
    callback=_memory_runs,
    help="Runs at the two memory readings [1000,10000; 100,400].",
)
@click.option(
    "--month-days", type=click.FloatRange(0.01, 366), help="Simulated days [30; quick 1]."
)
@click.option(
    "--month-trade-share",
    type=click.FloatRange(0, 1),
    help="Share of the simulated month's runs that trade [0.1].",
)
@click.option("--concurrency", type=click.IntRange(1, 64), help="Worker processes, as cdb up [2].")
@click.option(
    "--pg-admin-url",
    envvar="CDB_BENCH_PG_ADMIN_URL",
    default=DEFAULT_PG_ADMIN_URL,
    show_default=True,
    help="A PostgreSQL login that may create and drop databases (one per section, dropped "
    "afterwards).",
)
@click.pass_context
def bench(
    ctx: click.Context,
    quick: bool,
    as_json: bool,
    sqlite: bool,
    sections: tuple[str, ...],
    skip: tuple[str, ...],
    runs: int | None,
    baseline_chains: int | None,
    warmup_runs: int | None,
    universe_symbols: int | None,
    universe_runs: int | None,
    scrape_orders: int | None,
    scrape_requests: int | None,
    health_samples: int | None,
    memory_runs: tuple[int, int] | None,
    month_days: float | None,
    month_trade_share: float | None,
    concurrency: int | None,
    pg_admin_url: str,
) -> None:
    """Measure the pipeline on the real Redis and PostgreSQL (or SQLite), the MEXC simulator
    and workers started as `cdb up` starts them: the baseline chain, per-stage and end-to-end
    latencies, a 2,500-symbol universe, /metrics and /health, worker memory and storage.

    Progress goes to stderr; the results to stdout (a table, or JSON with --json). Each
    section uses its own throwaway database and Redis key prefix, removed afterwards."""
    chosen = tuple(s for s in (sections or SECTIONS) if s not in skip)
    if not chosen:
        raise click.UsageError("every section is skipped: nothing to run")
    config = settings(ctx)
    runner = _bench_package()
    from bench.errors import BenchError
    from bench.options import Options
    from bench.progress import Progress
    from bench.report import render_text

    options = Options.preset(
        quick,
        sqlite=sqlite,
        sections=chosen,
        pipeline_runs=runs,
        baseline_chains=baseline_chains,
        warmup_runs=warmup_runs,
        universe_symbols=universe_symbols,
        universe_runs=universe_runs,
        scrape_orders=scrape_orders,
        scrape_requests=scrape_requests,
        health_samples=health_samples,
        memory_runs=memory_runs,
        month_days=month_days,
        month_trade_share=month_trade_share,
        concurrency=concurrency,
    )
    try:
        result = runner.run_bench(options, config.broker_url, pg_admin_url, Progress())
    except BenchError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(result, indent=2, default=json_default))
    else:
        click.echo(render_text(result), nl=False)
