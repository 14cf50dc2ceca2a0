"""Worker memory over many runs: RSS (and PSS) of the worker's main process and its pool
children, from /proc, after warm-up and then as the runs add up.

Configuration: the pipeline section's (quiet market). Fast mode: runs are sent with as many
in flight as the worker has processes (--concurrency), each sent when the oldest one's
execution stage has committed — no clean latencies here, just many real runs quickly.
"""

from __future__ import annotations

from bench.options import Options
from bench.pipeline import pipeline_settings
from bench.proc import memory
from bench.progress import Progress
from bench.resources import Resources
from bench.section import open_section

SAMPLES = 10


def run_memory_section(options: Options, resources: Resources, progress: Progress) -> dict:
    first, second = options.memory_runs
    with open_section(
        "memory",
        resources,
        progress,
        pipeline_settings(options),
        options.sim_symbols,
        options.concurrency,
    ) as section:
        symbols = section.symbols
        section.market.flatten(symbols)
        progress.say(f"{options.warmup_runs} warm-up runs")
        section.driver.runs(options.warmup_runs)
        pid = section.running.worker_pid
        start = memory(pid)
        checkpoints = sorted(
            {*(round(second * i / SAMPLES) for i in range(1, SAMPLES + 1)), first} - {0}
        )
        series = [[0, start["rss_mb"], start["pss_mb"]]]
        at: dict[int, dict] = {}
        done = 0
        progress.say(f"{second} runs, {options.concurrency} in flight")
        report = progress.counter("runs", second, steps=SAMPLES)
        for checkpoint in checkpoints:
            section.driver.runs_in_flight(
                checkpoint - done,
                options.concurrency,
                progress=lambda n, base=done: report(base + n),
            )
            done = checkpoint
            section.running.check_alive("worker")
            at[checkpoint] = memory(pid)
            series.append([checkpoint, at[checkpoint]["rss_mb"], at[checkpoint]["pss_mb"]])
        one, two = at[first], at[second]
        return {
            "config": section.config(in_flight=options.concurrency),
            "runs": [first, second],
            "warmup_runs": options.warmup_runs,
            "start": start,
            "after_first": one,
            "after_second": two,
            "rss_growth_pct": round((two["rss_mb"] / one["rss_mb"] - 1) * 100, 2),
            "pss_growth_pct": round((two["pss_mb"] / one["pss_mb"] - 1) * 100, 2)
            if one["pss_mb"]
            else None,
            "series_runs_rss_pss_mb": series,
        }
