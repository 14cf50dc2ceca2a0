"""One worker, one database: the pipeline in a quiet market and in one with trades, with the
baseline chains interleaved between its runs (bench.baseline); then bytes per run over runs
with nothing in between, the simulated month (which copies those runs), and the market with
trades again on the month's database: whether a month of history slows the stages down.

Configuration: `cdb up`'s worker (2 processes) over the four queues; the simulator with 200
symbols; SYMBOL_WHITELIST = the 10 calmest tradable symbols, TOP_N=10, MIN_QUOTE_VOLUME=0
(every whitelisted symbol is screened in, fetched and evaluated every run, as with TOP_N=10
over a busy universe); MAX_DAILY_DRAWDOWN_PCT=0.20 so the trades market's round trips never
halt trading; every other setting at its default. Runs are sent back to back (bench.driver).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator

from bench.baseline import RESULT_KEY, Chains, Worker
from bench.errors import BenchError
from bench.market import Market
from bench.month import PRUNE_TASK, Pruner, prune_registered, retention_settings, simulate_month
from bench.options import Options
from bench.progress import Progress
from bench.resources import Resources
from bench.section import Section, open_section
from bench.sizes import delta, row_counts, table_bytes
from bench.stack import READY_SECONDS, client_app
from bench.timings import latency_figures, read_timings

MARKETS = ("quiet", "trades")


def pipeline_settings(options: Options):  # type: ignore[no-untyped-def]
    def settings(market: Market) -> dict[str, str]:
        return {
            "SYMBOL_WHITELIST": ",".join(market.calmest(options.top_n)),
            "TOP_N": str(options.top_n),
            "MIN_QUOTE_VOLUME": "0",
            "MAX_DAILY_DRAWDOWN_PCT": "0.20",
        }

    return settings


def run_pipeline_sections(options: Options, resources: Resources, progress: Progress) -> dict:
    results: dict = {}
    with open_section(
        "pipeline",
        resources,
        progress,
        pipeline_settings(options),
        options.sim_symbols,
        options.concurrency,
    ) as section:
        config = section.config()
        symbols = section.symbols
        section.market.flatten(symbols)
        progress.say(f"{options.warmup_runs} warm-up runs (not measured)")
        section.driver.runs(options.warmup_runs)
        with baseline_chains(section, options) as chains:
            if options.wants("pipeline"):
                results["pipeline"] = {
                    "config": config,
                    "warmup_runs": options.warmup_runs,
                    **measure_markets(section, options, progress, chains),
                }
            if chains is not None:
                if not options.wants("pipeline"):
                    progress.say(f"{options.baseline_chains} chains on each worker")
                    report = progress.counter("chains", options.baseline_chains)
                    for done in range(1, options.baseline_chains + 1):
                        chains.one()
                        report(done)
                results["baseline"] = {
                    "config": config,
                    "interleaved_with_pipeline_runs": options.wants("pipeline"),
                    **chains.figures("baseline"),
                    "celery_floor": chains.figures("celery_floor"),
                }
        if options.wants("storage"):
            results["storage"] = measure_storage(section, options, progress)
    return results


@contextlib.contextmanager
def baseline_chains(section: Section, options: Options) -> Iterator[Chains | None]:
    """The baseline's two workers: the stack's own, and one of bench.floor (bare Celery: no
    application, no task-run recording) on a key prefix of its own; None without baseline."""
    if not options.wants("baseline"):
        yield None
        return
    running = section.running
    prefix = running.settings.redis_key_prefix + "floor:"
    with running.other_worker("bench.floor", prefix) as child:
        celery = client_app(running.settings.model_copy(update={"redis_key_prefix": prefix}))

        def floor_alive() -> None:
            if child.process.poll() is not None:
                raise BenchError(f"the bench.floor worker exited; its log is {running.log_path}")

        try:
            deadline = time.monotonic() + READY_SECONDS
            while not celery.control.ping(timeout=0.5):
                floor_alive()
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"the bench.floor worker did not answer; its log is {running.log_path}"
                    )
            own = running.settings.redis_key_prefix
            chains = Chains(
                section.redis,
                {
                    "baseline": Worker(running.celery, own, running.check_alive, running.log_path),
                    "celery_floor": Worker(celery, prefix, floor_alive, running.log_path),
                },
            )
            for worker in chains.workers.values():
                section.redis.delete(worker.prefix + RESULT_KEY)
            chains.warm_up()
            yield chains
        finally:
            celery.close()


def market_runs(
    section: Section,
    name: str,
    count: int,
    after: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """`count` runs back to back in market `name` (one of MARKETS), from flattened prices:
    with trades, one symbol is stepped before each run; returns the run keys."""
    symbols = section.symbols
    market = section.market
    market.flatten(symbols)
    step = (lambda index: market.step(symbols, index)) if name == "trades" else None
    return section.driver.runs(count, before=step, after=after, progress=progress)


def measure_markets(
    section: Section, options: Options, progress: Progress, chains: Chains | None
) -> dict:
    """Each market's runs back to back, with the baseline chains between them."""
    per_run = math.ceil(options.baseline_chains / (options.pipeline_runs * len(MARKETS)))

    def after(_index: int) -> None:
        for _ in range(per_run if chains is not None else 0):
            chains.one()  # type: ignore[union-attr]

    results: dict = {}
    for name in MARKETS:
        warmup = market_warmup_runs(section, name)
        if warmup:
            progress.say(f"{name} market: {warmup} warm-up runs (not measured)")
            market_runs(section, name, warmup)
        progress.say(
            f"{name} market: {options.pipeline_runs} runs, back to back"
            + (f", {per_run} baseline chain(s) on each worker after each" if chains else "")
        )
        keys = market_runs(
            section,
            name,
            options.pipeline_runs,
            after=after,
            progress=progress.counter("runs", options.pipeline_runs),
        )
        results[name] = {
            **latency_figures(read_timings(section.engine, keys)),
            "warmup_runs": warmup,
        }
    return results


def market_warmup_runs(section: Section, name: str) -> int:
    """Unmeasured runs before a market's measured ones. The section's warm-up runs are quiet:
    with trades, the first orders, fills and positions would otherwise be measured with each
    statement's first compilation and each code path's first imports (the slowest runs by
    far). Two per symbol: each is bought and sold again, so no position is left over."""
    if name != "trades":
        return 0
    return 2 * len(section.symbols)


def measure_storage(section: Section, options: Options, progress: Progress) -> dict:
    """Bytes per run over runs with nothing in between, then the simulated month."""
    engine = section.engine
    per_market: dict[str, dict] = {}
    runs: dict[str, list[int]] = {}
    for name in MARKETS:
        before = table_bytes(engine)
        progress.say(f"storage, {name} market: {options.pipeline_runs} runs")
        keys = market_runs(section, name, options.pipeline_runs)
        after = table_bytes(engine)
        grown = {table: size for table, size in delta(before, after).items() if size}
        per_market[name] = {
            "runs": len(keys),
            "bytes_per_run": round(sum(grown.values()) / len(keys)),
            "bytes_per_run_by_table": {t: round(v / len(keys)) for t, v in grown.items()},
        }
        runs[name] = [t.run_id for t in read_timings(engine, keys) if t.run_id and t.complete]

    settings = section.running.settings
    prune = Pruner(section.running, engine) if prune_registered(section.running) else None
    progress.say(
        f"a simulated month: {options.month_days:g} days of runs every "
        f"{settings.market_data_interval_sec} s, "
        + ("pruned as beat would" if prune else "no retention (no pruning task)")
    )
    # The month's template: every quiet run, and runs with trades for --month-trade-share.
    quiet, trades = runs["quiet"], runs["trades"]
    share = options.month_trade_share
    wanted = min(len(trades), math.ceil(len(quiet) * share / (1 - share)) if share < 1 else 10**9)
    month = simulate_month(
        engine,
        quiet + trades[:wanted],
        options.month_days,
        settings.market_data_interval_sec,
        progress,
        prune,
    )
    month["template_runs_with_trades"] = wanted
    after = after_the_month(section, options, progress)
    return {
        "config": section.config(month_trade_share=share),
        "method": "bytes per run: size deltas over runs sent back to back with nothing in "
        "between; month: copies of those runs' rows with the month's timestamps, pruned by the "
        "worker's own pruning task (bench/month.py)",
        "markets": per_market,
        "bytes_per_run": {name: per_market[name]["bytes_per_run"] for name in MARKETS},
        "bytes_per_run_by_table": {
            name: per_market[name]["bytes_per_run_by_table"] for name in MARKETS
        },
        "retention": retention_settings(settings) or None,
        "retention_note": None
        if prune
        else f"measured without retention: the worker has no {PRUNE_TASK} task",
        "month": month,
        "after_month": after,
    }


# What a month of history could slow down: the reads of decisions, orders, fills and runs.
HISTORY_TABLES = ("market_data_runs", "signals", "risk_decisions", "orders", "fills")


def after_the_month(section: Section, options: Options, progress: Progress) -> dict:
    """The market with trades again, as many runs as before the month, on the month's
    database (the copies sit below the real rows by id and in time, as older history does)."""
    progress.say(f"after the month: {options.pipeline_runs} runs with trades")
    keys = market_runs(
        section,
        "trades",
        options.pipeline_runs,
        progress=progress.counter("runs", options.pipeline_runs),
    )
    return {
        "history_rows": row_counts(section.engine, list(HISTORY_TABLES)),
        **latency_figures(read_timings(section.engine, keys)),
    }
