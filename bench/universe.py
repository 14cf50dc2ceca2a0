"""A full cycle over a 2,500-symbol universe.

Configuration: the simulator with 2,500 symbols; no whitelist and MIN_QUOTE_VOLUME=0, so
every online USDT pair is screened; TOP_N at the most the settings allow (100), so a run
fetches klines and a book for 100 symbols; every other setting at its default. Runs go back
to back after two warm-up runs (the first one loads 2,500 markets from exchangeInfo). A
cycle is market data started -> execution finished; its pipeline time is the cycle less the
waits on MEXC's answers (the all-tickers request and the 100 per-symbol fetches, which here
are answered by a simulator sharing the machine's cores); symbols per second is the universe
the run screened over the median cycle.
"""

from __future__ import annotations

from app.config import RANGES
from bench.market import Market
from bench.options import Options
from bench.progress import Progress
from bench.resources import Resources
from bench.section import open_section
from bench.stats import percentile, summary
from bench.timings import latency_figures, read_timings

WARMUP_RUNS = 2


def universe_settings(market: Market) -> dict[str, str]:
    return {"MIN_QUOTE_VOLUME": "0", "TOP_N": str(RANGES["top_n"][1])}


def run_universe_section(options: Options, resources: Resources, progress: Progress) -> dict:
    with open_section(
        "universe",
        resources,
        progress,
        universe_settings,
        options.universe_symbols,
        options.concurrency,
    ) as section:
        progress.say(f"{WARMUP_RUNS} warm-up runs (not measured)")
        section.driver.runs(WARMUP_RUNS)
        progress.say(f"{options.universe_runs} full cycles, back to back")
        keys = section.driver.runs(
            options.universe_runs, progress=progress.counter("cycles", options.universe_runs)
        )
        timings = [t for t in read_timings(section.engine, keys) if t.complete]
        figures = latency_figures(timings)
        cycles = [t.e2e_ms / 1000 for t in timings]
        own = [t.pipeline_ms / 1000 for t in timings if t.pipeline_ms is not None]
        waits = [t.mexc_wait_ms / 1000 for t in timings if t.mexc_wait_ms is not None]
        universe = sorted(t.universe_size for t in timings)
        screened = sorted(t.screened for t in timings)
        median_cycle = percentile(cycles, 50)
        symbols = universe[len(universe) // 2] if universe else None
        return {
            "config": section.config(warmup_runs=WARMUP_RUNS),
            "universe_symbols": symbols,
            "fetched_symbols": screened[len(screened) // 2] if screened else None,
            "cycle_s": summary(cycles, digits=3),
            "pipeline_s": summary(own, digits=3),
            "mexc_wait_s": summary(waits, digits=3),
            "symbols_per_s": round(symbols / median_cycle) if symbols and median_cycle else None,
            **figures,
        }
