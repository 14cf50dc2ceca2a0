"""`cdb bench --quick` works and prints every figure: a smoke test, not a timed one (the sizes
are the smallest the options allow; the figures themselves are not checked)."""

from __future__ import annotations

import json
import math
import os
import subprocess

import pytest

from app.supervisor import CDB
from tests.conftest import PG_ADMIN_URL, REDIS_URL
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration

SMALLEST = [
    "--runs", "3",
    "--warmup-runs", "2",
    "--baseline-chains", "5",
    "--universe-symbols", "300",
    "--universe-runs", "1",
    "--scrape-orders", "1000",
    "--scrape-requests", "5",
    "--health-samples", "6",
    "--memory-runs", "3,6",
    "--month-days", "0.02",
]  # fmt: skip
NUMBERS = (
    "baseline_chain_p50_ms",
    "baseline_chain_p95_ms",
    "baseline_chain_p99_ms",
    "celery_floor_chain_p50_ms",
    "celery_floor_chain_p99_ms",
    "e2e_p50_ms",
    "e2e_p95_ms",
    "e2e_p99_ms",
    "chain_p50_ms",
    "chain_p95_ms",
    "chain_p99_ms",
    "chain_ratio_p99",
    "quiet_e2e_p99_ms",
    "quiet_chain_p99_ms",
    "quiet_chain_ratio_p99",
    "universe_symbols",
    "universe_cycle_s",
    "universe_pipeline_s",
    "universe_mexc_wait_s",
    "universe_symbols_per_s",
    "universe_chain_p99_ms",
    "universe_chain_ratio_p99",
    "universe_top10_cycle_s",
    "universe_top10_pipeline_p99_s",
    "universe_top10_chain_p99_ms",
    "universe_top10_chain_ratio_p99",
    "universe_bytes_per_run",
    "universe_top10_bytes_per_run",
    "universe_evaluations_per_run",
    "metrics_scrape_p50_ms",
    "metrics_scrape_p99_ms",
    "metrics_scrape_idle_p99_ms",
    "health_p50_ms",
    "health_p99_ms",
    "scrape_orders",
    "worker_rss_mb_start",
    "worker_rss_mb_1k",
    "worker_rss_mb_10k",
    "worker_rss_growth_pct",
    "db_bytes_per_run",
    "db_bytes_per_run_trades",
    "db_month_bytes",
    "month_chain_p50_ms",
    "month_chain_p99_ms",
)
STAGES = ("market_data", "signals", "risk", "execution")
MACHINE = ("cores", "memory_gib", "python", "postgresql", "redis", "date", "git_commit")


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_quick_bench_prints_every_figure():
    env = {**os.environ, "REDIS_URL": REDIS_URL}
    argv = [*CDB, "bench", "--quick", "--json", "--pg-admin-url", PG_ADMIN_URL, *SMALLEST]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)

    assert result["quick"] is True
    assert set(result["sections_run"]) == {
        "baseline", "pipeline", "universe", "scrape", "memory", "storage"
    }  # fmt: skip
    not_numbers = {key: result.get(key) for key in NUMBERS if not is_number(result.get(key))}
    assert not not_numbers
    for key in ("stage_p50_ms", "stage_p99_ms", "month_stage_p50_ms"):
        assert set(result[key]) == set(STAGES)
        assert all(is_number(value) for value in result[key].values()), result[key]
    assert result["pipeline_runs"] == 3 and result["worker_rss_runs"] == [3, 6]
    whitelist = result["sections"]["pipeline"]["config"]["settings"]["SYMBOL_WHITELIST"]
    assert result["trades_warmup_runs"] == 2 * len(whitelist.split(","))  # each bought, sold
    assert result["scrape_orders"] >= 1000 and result["scrape_fills"] >= 1000
    assert result["month_history_rows"]["risk_decisions"] >= 3  # the month's and after
    assert result["db_bytes_per_run_by_table"]
    assert all(is_number(v) for v in result["db_bytes_per_run_by_table"].values())
    assert all(result["machine"].get(key) for key in MACHINE), result["machine"]
    universe = result["sections"]["universe"]
    assert universe["config"]["settings"]["TOP_N"] == "100"
    assert universe["top_n_10"]["config"]["settings"]["TOP_N"] == "10"
    # TOP_N symbols, plus every symbol held: with the history seeded, the universe's runs buy
    assert universe["top_n_10"]["fetched_symbols"] >= 10
    for phase in (universe, universe["top_n_10"]):
        # the history seeded before the measured cycles covers the look-back: the strategy
        # judges the universe (warming up, every pair but the fetched ones would be counted
        # as not_enough_candles)
        assert phase["config"]["history_snapshots"] > 0
        outcomes = phase["outcomes_per_run"]
        assert outcomes.get("not_enough_candles", 0) < 0.1 * sum(outcomes.values()), outcomes
    for section in result["sections_run"]:
        assert result["sections"][section]["config"]["worker"].startswith("celery -A workers")
    assert "error" not in done.stderr
