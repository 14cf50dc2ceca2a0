"""Full cycles over a 2,500-symbol universe, at two TOP_N.

Configuration: the simulator with 2,500 symbols; no whitelist and MIN_QUOTE_VOLUME=0, so
every online USDT pair is screened by the strategy from the all-tickers history; TOP_N is the
number of symbols whose klines and book a run fetches and which the strategy judges from
candles. Two phases, each with its own workers and database: TOP_N=10 (the default, and the
configuration the chain target names) and TOP_N=100 (the most the settings allow: 100
per-symbol fetches and 1,600 candles read per run). After the first warm-up run, the bench
stores the universe history of the look-back before it (bench/history.py), so the measured
cycles judge every pair as a bot that has run for a while does (and keep verdicts for the
would-be trades whose book was not fetched); the section reports the bytes and verdicts stored
per run. Runs go back to back after ten warm-up
runs: the first one loads 2,500 markets from exchangeInfo, and with ten each of the two pool
processes has run every stage about five times, when psycopg prepares a statement on its
connection (with two, the first measured cycles were the slowest of the 40). A cycle is
market data started -> execution finished; its pipeline time is the cycle less the waits on
MEXC's answers (the all-tickers request and the per-symbol fetches, which here are answered by
a simulator sharing the machine's cores); symbols per second is the universe the run screened
over the median cycle. The TOP_N=100 phase's figures are the section's headline ones
(`universe_*`); the TOP_N=10 phase's are under `top_n_10` (`universe_top10_*`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sqlalchemy import bindparam, select

from app.config import RANGES
from app.models import MarketDataRun
from bench.history import seed_universe_history
from bench.market import Market
from bench.options import Options
from bench.progress import Progress
from bench.resources import Resources
from bench.section import Section, open_section
from bench.sizes import delta, row_counts, table_bytes
from bench.stats import percentile, summary
from bench.timings import latency_figures, read_timings

WARMUP_RUNS = 10


TOP_N_PHASES = (RANGES["top_n"][1], 10)


def universe_settings(top_n: int) -> Callable[[Market], dict[str, str]]:
    def settings(market: Market) -> dict[str, str]:
        return {"MIN_QUOTE_VOLUME": "0", "TOP_N": str(top_n)}

    return settings


def run_universe_section(options: Options, resources: Resources, progress: Progress) -> dict:
    widest, default = (_measure(top_n, options, resources, progress) for top_n in TOP_N_PHASES)
    return {**widest, "top_n_10": default}


def _measure(top_n: int, options: Options, resources: Resources, progress: Progress) -> dict:
    name = "universe" if top_n == TOP_N_PHASES[0] else f"universe_top{top_n}"
    with open_section(
        name,
        resources,
        progress,
        universe_settings(top_n),
        options.universe_symbols,
        options.concurrency,
    ) as section:
        progress.say(f"TOP_N={top_n}: {WARMUP_RUNS} warm-up runs (not measured)")
        section.driver.runs(1)
        lookback = section.running.settings.lookback_minutes
        seeded = seed_universe_history(section.engine, section.market.server.market, lookback)
        progress.say(f"TOP_N={top_n}: {seeded} snapshots of the universe's last {lookback} min")
        section.driver.runs(WARMUP_RUNS - 1)
        progress.say(f"TOP_N={top_n}: {options.universe_runs} full cycles, back to back")
        before, verdicts_before = table_bytes(section.engine), _verdicts(section)
        keys = section.driver.runs(
            options.universe_runs, progress=progress.counter("cycles", options.universe_runs)
        )
        grown = {t: n for t, n in delta(before, table_bytes(section.engine)).items() if n > 0}
        verdicts = _verdicts(section) - verdicts_before
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
            "config": section.config(warmup_runs=WARMUP_RUNS, history_snapshots=seeded),
            "universe_symbols": symbols,
            "fetched_symbols": screened[len(screened) // 2] if screened else None,
            "cycle_s": summary(cycles, digits=3),
            "pipeline_s": summary(own, digits=3),
            "mexc_wait_s": summary(waits, digits=3),
            "symbols_per_s": round(symbols / median_cycle) if symbols and median_cycle else None,
            "bytes_per_run": round(sum(grown.values()) / len(keys)),
            "bytes_per_run_by_table": {t: round(n / len(keys)) for t, n in grown.items()},
            "evaluations_per_run": round(verdicts / len(keys), 1),
            "outcomes_per_run": _outcomes(section, [t.run_id for t in timings]),
            **figures,
        }


def _verdicts(section: Section) -> int:
    return row_counts(section.engine, ["evaluations"])["evaluations"]


def _outcomes(section: Section, run_ids: list[int | None]) -> dict[str, float]:
    """How many of the universe's pairs got each outcome, on average over the runs."""
    ids = [run_id for run_id in run_ids if run_id is not None]
    if not ids:
        return {}
    total: Counter[str] = Counter()
    with section.engine.connect() as conn:
        for (counts,) in conn.execute(_COUNTS, {"ids": ids}):
            total.update(counts or {})
    return {outcome: round(n / len(ids), 1) for outcome, n in sorted(total.items())}


_COUNTS = select(MarketDataRun.evaluation_counts).where(
    MarketDataRun.id.in_(bindparam("ids", expanding=True))
)
