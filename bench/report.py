"""The results: flat headline keys (what CI checks and people compare), the sections in full
with the configuration each used, and the same as a table for people.

Headline latencies come from the market with trades (every run there has a signal, a risk
decision, an order and a fill, so "market data started -> fill committed" is measured on every
run); the quiet market's are prefixed `quiet_`. Ratios divide by the baseline chain's p99
measured on the same worker in the same run.
"""

from __future__ import annotations

from typing import Any

from bench.options import Options
from bench.stats import ratio
from bench.timings import STAGES

# Keys that must be numbers whenever their section ran (tests/integration/test_bench_smoke.py).
NUMERIC_KEYS = {
    "baseline": (
        "baseline_chain_p50_ms",
        "baseline_chain_p95_ms",
        "baseline_chain_p99_ms",
        "celery_floor_chain_p50_ms",
        "celery_floor_chain_p99_ms",
    ),
    "pipeline": (
        "e2e_p50_ms",
        "e2e_p95_ms",
        "e2e_p99_ms",
        "chain_p50_ms",
        "chain_p95_ms",
        "chain_p99_ms",
        "quiet_e2e_p99_ms",
        "quiet_chain_p99_ms",
        "pipeline_runs",
        "trades_warmup_runs",
    ),
    "universe": (
        "universe_symbols",
        "universe_cycle_s",
        "universe_cycle_p99_s",
        "universe_pipeline_s",
        "universe_pipeline_p99_s",
        "universe_symbols_per_s",
        "universe_chain_p99_ms",
        "universe_top10_cycle_s",
        "universe_top10_pipeline_p99_s",
        "universe_top10_chain_p99_ms",
        "universe_bytes_per_run",
        "universe_top10_bytes_per_run",
    ),
    "scrape": (
        "metrics_scrape_p50_ms",
        "metrics_scrape_p99_ms",
        "metrics_scrape_idle_p99_ms",
        "health_p50_ms",
        "health_p99_ms",
        "scrape_orders",
        "scrape_fills",
    ),
    "memory": ("worker_rss_mb_start", "worker_rss_mb_1k", "worker_rss_mb_10k"),
    "storage": (
        "db_bytes_per_run",
        "db_bytes_per_run_trades",
        "db_month_bytes",
        "month_chain_p50_ms",
        "month_chain_p99_ms",
    ),
}
RATIO_KEYS = (
    "chain_ratio_p99",
    "quiet_chain_ratio_p99",
    "universe_chain_ratio_p99",
    "universe_top10_chain_ratio_p99",
)
PER_STAGE_KEYS = ("stage_p50_ms", "stage_p99_ms")


def _get(data: dict | None, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def assemble(
    options: Options,
    machine: dict,
    sections: dict[str, dict],
    durations: dict[str, float],
    seconds: float,
) -> dict:
    baseline = sections.get("baseline")
    pipeline = sections.get("pipeline") or {}
    trades, quiet = pipeline.get("trades"), pipeline.get("quiet")
    universe = sections.get("universe")
    scrape = sections.get("scrape")
    memory = sections.get("memory")
    storage = sections.get("storage")
    base_p99 = _get(baseline, "chain_ms", "p99")
    out: dict[str, Any] = {
        "quick": options.quick,
        "database": "sqlite" if options.sqlite else "postgresql",
        "sections_run": [s for s in sections if s in NUMERIC_KEYS],
        "baseline_chain_p50_ms": _get(baseline, "chain_ms", "p50"),
        "baseline_chain_p95_ms": _get(baseline, "chain_ms", "p95"),
        "baseline_chain_p99_ms": base_p99,
        "baseline_chains": _get(baseline, "chains"),
        "celery_floor_chain_p50_ms": _get(baseline, "celery_floor", "chain_ms", "p50"),
        "celery_floor_chain_p99_ms": _get(baseline, "celery_floor", "chain_ms", "p99"),
        "pipeline_runs": _get(trades, "runs"),
        "trades_warmup_runs": _get(trades, "warmup_runs"),
        "e2e_p50_ms": _get(trades, "e2e_ms", "p50"),
        "e2e_p95_ms": _get(trades, "e2e_ms", "p95"),
        "e2e_p99_ms": _get(trades, "e2e_ms", "p99"),
        "chain_p50_ms": _get(trades, "chain_ms", "p50"),
        "chain_p95_ms": _get(trades, "chain_ms", "p95"),
        "chain_p99_ms": _get(trades, "chain_ms", "p99"),
        "chain_ratio_p99": ratio(_get(trades, "chain_ms", "p99"), base_p99),
        "chain_ratio_p99_vs_floor": ratio(
            _get(trades, "chain_ms", "p99"), _get(baseline, "celery_floor", "chain_ms", "p99")
        ),
        "stage_p50_ms": _per_stage(trades, "p50"),
        "stage_p99_ms": _per_stage(trades, "p99"),
        "runs_with_fills": _get(trades, "runs_with_fills"),
        "quiet_e2e_p99_ms": _get(quiet, "e2e_ms", "p99"),
        "quiet_chain_p99_ms": _get(quiet, "chain_ms", "p99"),
        "quiet_chain_ratio_p99": ratio(_get(quiet, "chain_ms", "p99"), base_p99),
        "quiet_stage_p99_ms": _per_stage(quiet, "p99"),
        "universe_symbols": _get(universe, "universe_symbols"),
        "universe_cycle_s": _get(universe, "cycle_s", "p50"),
        "universe_cycle_p99_s": _get(universe, "cycle_s", "p99"),
        "universe_pipeline_s": _get(universe, "pipeline_s", "p50"),
        "universe_pipeline_p99_s": _get(universe, "pipeline_s", "p99"),
        "universe_mexc_wait_s": _get(universe, "mexc_wait_s", "p50"),
        "universe_symbols_per_s": _get(universe, "symbols_per_s"),
        "universe_chain_p99_ms": _get(universe, "chain_ms", "p99"),
        "universe_chain_ratio_p99": ratio(_get(universe, "chain_ms", "p99"), base_p99),
        "universe_runs": _get(universe, "runs"),
        "universe_top10_cycle_s": _get(universe, "top_n_10", "cycle_s", "p50"),
        "universe_top10_pipeline_s": _get(universe, "top_n_10", "pipeline_s", "p50"),
        "universe_top10_pipeline_p99_s": _get(universe, "top_n_10", "pipeline_s", "p99"),
        "universe_top10_chain_p99_ms": _get(universe, "top_n_10", "chain_ms", "p99"),
        "universe_top10_chain_ratio_p99": ratio(
            _get(universe, "top_n_10", "chain_ms", "p99"), base_p99
        ),
        "universe_bytes_per_run": _get(universe, "bytes_per_run"),
        "universe_evaluations_per_run": _get(universe, "evaluations_per_run"),
        "universe_top10_bytes_per_run": _get(universe, "top_n_10", "bytes_per_run"),
        "universe_top10_evaluations_per_run": _get(universe, "top_n_10", "evaluations_per_run"),
        "metrics_scrape_p50_ms": _get(scrape, "metrics_ms", "p50"),
        "metrics_scrape_p99_ms": _get(scrape, "metrics_ms", "p99"),
        "metrics_scrape_idle_p99_ms": _get(scrape, "metrics_idle_ms", "p99"),
        "health_p50_ms": _get(scrape, "health_ms", "p50"),
        "health_p99_ms": _get(scrape, "health_ms", "p99"),
        "scrape_orders": _get(scrape, "seeded", "rows", "orders"),
        "scrape_fills": _get(scrape, "seeded", "rows", "fills"),
        "worker_rss_mb_start": _get(memory, "start", "rss_mb"),
        "worker_rss_mb_1k": _get(memory, "after_first", "rss_mb"),
        "worker_rss_mb_10k": _get(memory, "after_second", "rss_mb"),
        "worker_rss_growth_pct": _get(memory, "rss_growth_pct"),
        "worker_rss_runs": _get(memory, "runs"),
        "db_bytes_per_run": _get(storage, "bytes_per_run", "quiet"),
        "db_bytes_per_run_trades": _get(storage, "bytes_per_run", "trades"),
        "db_bytes_per_run_by_table": _get(storage, "bytes_per_run_by_table", "quiet"),
        "db_month_bytes": _get(storage, "month", "database_bytes"),
        "db_month_days": _get(storage, "month", "days"),
        "db_month_runs": _get(storage, "month", "runs_simulated"),
        "db_month_pruned": _get(storage, "month", "pruned"),
        "retention": _get(storage, "retention"),
        "month_chain_p50_ms": _get(storage, "after_month", "chain_ms", "p50"),
        "month_chain_p99_ms": _get(storage, "after_month", "chain_ms", "p99"),
        "month_stage_p50_ms": _per_stage(_get(storage, "after_month"), "p50"),
        "month_history_rows": _get(storage, "after_month", "history_rows"),
        "machine": machine,
        "seconds": round(seconds, 1),
        "section_seconds": durations,
        "sections": sections,
    }
    return out


def _per_stage(market: dict | None, pct: str) -> dict[str, float | None] | None:
    if market is None:
        return None
    return {stage: _get(market, "stage_ms", stage, pct) for stage in STAGES}


# -- for people --------------------------------------------------------------------------


def _n(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) or (isinstance(value, float) and value >= 1000):
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _row(
    name: str, figures: dict | None, base: float | None, config: str, digits: int = 1
) -> list[str]:
    p99 = _get(figures, "p99")
    return [
        name,
        _n(_get(figures, "p50"), digits),
        _n(_get(figures, "p95"), digits),
        _n(p99, digits),
        (f"{ratio(p99, base):.1f}x" if ratio(p99, base) is not None else ""),
        config,
    ]


def render_text(result: dict) -> str:
    s = result["sections"]
    base = result["baseline_chain_p99_ms"]
    machine = result["machine"]
    pipeline = s.get("pipeline") or {}
    config = _get(s, "pipeline", "config") or _get(s, "baseline", "config") or {}
    top_n = _get(config, "settings", "TOP_N")
    sims = _get(config, "simulator_symbols")
    rows: list[list[str]] = []
    pipe_cfg = f"TOP_N={top_n} of {sims} sim symbols" if top_n else ""
    if "baseline" in s:
        rows.append(
            _row(
                "baseline chain: 4 no-op hops (ms)",
                s["baseline"]["chain_ms"],
                base,
                f"{s['baseline']['chains']} chains, the pipeline's worker"
                + (
                    ", between the runs"
                    if s["baseline"].get("interleaved_with_pipeline_runs")
                    else ""
                ),
            )
        )
        floor = s["baseline"].get("celery_floor")
        if floor:
            rows.append(
                _row(
                    "celery floor: same hops, bare app (ms)",
                    floor["chain_ms"],
                    base,
                    "bare Celery app, same argv and celeryconfig",
                )
            )
    for market in ("quiet", "trades"):
        figures = pipeline.get(market)
        if not figures:
            continue
        warmup = figures.get("warmup_runs")
        runs = f"{figures['runs']} runs" + (f" after {warmup} warm-up" if warmup else "")
        runs += f", {pipe_cfg}"
        rows.append(_row(f"post-fetch chain, {market} (ms)", figures["chain_ms"], base, runs))
        rows.append(_row(f"md start -> exec end, {market} (ms)", figures["e2e_ms"], base, runs))
        for stage in STAGES:
            rows.append(
                _row(f"  stage {stage}, {market} (ms)", figures["stage_ms"][stage], None, "")
            )
    after = _get(s, "storage", "after_month")
    if after:
        decisions = _n(_get(after, "history_rows", "risk_decisions"))
        runs = f"{after['runs']} runs, after the month: {decisions} decisions kept"
        rows.append(_row("post-fetch chain, trades, month on (ms)", after["chain_ms"], base, runs))
        for stage in STAGES[1:]:
            rows.append(_row(f"  stage {stage}, month on (ms)", after["stage_ms"][stage], None, ""))
    universe = s.get("universe")
    for phase in (universe.get("top_n_10"), universe) if universe else ():
        if not phase:
            continue
        top_n = _get(phase, "config", "settings", "TOP_N")
        cfg = f"{phase['universe_symbols']} symbols screened, {phase['runs']} runs"
        label = f"universe, TOP_N={top_n}:"
        rows.append(_row(f"{label} full cycle (s)", phase["cycle_s"], None, cfg, 2))
        rows.append(_row(f"{label} less MEXC waits (s)", phase["pipeline_s"], None, cfg, 2))
        rows.append(_row(f"{label} waits on MEXC (s)", phase["mexc_wait_s"], None, cfg, 2))
        rows.append(_row(f"{label} post-fetch chain (ms)", phase["chain_ms"], base, cfg))
    scrape = s.get("scrape")
    if scrape:
        orders = _n(_get(scrape, "seeded", "rows", "orders"))
        rows.append(
            _row("/metrics, idle (ms)", scrape["metrics_idle_ms"], None, f"{orders} orders+fills")
        )
        load = f"{orders} orders+fills, {_get(scrape, 'config', 'health_clients')} /health pollers"
        rows.append(_row("/metrics, under /health polling (ms)", scrape["metrics_ms"], None, load))
        rows.append(_row("/health, 6 pollers (ms)", scrape["health_ms"], None, load))
    lines = [
        f"cdb bench{' --quick' if result['quick'] else ''} on {result['database']}: "
        f"{machine.get('cores')} cores, {machine.get('memory_gib')} GiB, Python "
        f"{machine.get('python')}, PostgreSQL {machine.get('postgresql') or '-'}, Redis "
        f"{machine.get('redis')}, commit {str(machine.get('git_commit'))[:10]}"
        f"{' (+ uncommitted changes)' if machine.get('git_modified_files') else ''}, "
        f"{machine.get('date')}",
        "",
    ]
    if rows:
        header = ["figure", "p50", "p95", "p99", "p99/baseline", "configuration"]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, ["-" * w for w in widths], *rows]:
            lines.append(
                "  ".join(
                    cell.ljust(widths[i]) if i in (0, 5) else cell.rjust(widths[i])
                    for i, cell in enumerate(row)
                ).rstrip()
            )
        lines.append("")
    memory = s.get("memory")
    if memory:
        first, second = memory["runs"]
        lines.append(
            f"worker RSS (main + pool): {_n(memory['start']['rss_mb'])} MB after warm-up, "
            f"{_n(memory['after_first']['rss_mb'])} MB after {first:,} runs, "
            f"{_n(memory['after_second']['rss_mb'])} MB after {second:,} runs "
            f"({memory['rss_growth_pct']:+.2f} %; PSS {_n(memory['after_second']['pss_mb'])} MB)"
        )
    storage = s.get("storage")
    if storage:
        month = storage["month"]
        per_run = storage["bytes_per_run"]
        lines.append(
            f"database per run: {_n(per_run['quiet'])} B quiet, {_n(per_run['trades'])} B with "
            f"trades; after {month['days']:g} simulated days ({month['runs_simulated']:,} runs "
            f"every {month['interval_sec']} s): {month['database_bytes'] / 1e6:,.1f} MB "
            + ("(pruned)" if month["pruned"] else "(no retention)")
        )
    for phase in (universe.get("top_n_10"), universe) if universe else ():
        if phase and phase.get("bytes_per_run") is not None:
            verdicts = phase["bytes_per_run_by_table"].get("evaluations", 0)
            lines.append(
                f"universe, TOP_N={_get(phase, 'config', 'settings', 'TOP_N')}: database per "
                f"run {_n(phase['bytes_per_run'])} B, of which {_n(verdicts)} B verdicts "
                f"({phase['evaluations_per_run']:g} a run)"
            )
    lines.append(f"took {result['seconds']:.0f} s ({result['section_seconds']})")
    return "\n".join(lines) + "\n"
