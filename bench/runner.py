"""Runs the chosen sections in order, each on its own database and processes, and hands the
results to bench.report. Whatever happens, every process it started is stopped and every
database and Redis key it made is removed (the child logs stay when it failed)."""

from __future__ import annotations

import time

from sqlalchemy.exc import SQLAlchemyError

from app.config import redact_url
from app.supervisor import broker_problem
from bench.errors import BenchError
from bench.machine import describe, load_average
from bench.memory import run_memory_section
from bench.options import Options
from bench.pipeline import run_pipeline_sections
from bench.progress import Progress
from bench.report import assemble
from bench.resources import Resources
from bench.scrape import run_scrape_section
from bench.universe import run_universe_section


def run_bench(options: Options, redis_url: str, pg_admin_url: str, progress: Progress) -> dict:
    problem = broker_problem(redis_url)
    if problem is not None:
        raise BenchError(
            f"Redis at {redact_url(redis_url)} does not answer ({' '.join(problem.split())}): "
            "start it or set REDIS_URL to one that runs"
        )
    resources = Resources(redis_url, None if options.sqlite else pg_admin_url)
    started = time.monotonic()
    sections: dict[str, dict] = {}
    durations: dict[str, float] = {}
    failed = True
    try:
        machine = describe(redis_url, resources.pg_admin_url)
        load, cores = machine.get("load_average_at_start"), machine.get("cores") or 1
        if load and load[0] > cores / 2:
            progress.say(
                f"the machine is busy (load average {load[0]:.1f} on {cores} cores): other "
                "work competes with the bench, so its figures will be noisier and slower"
            )
        steps = [
            (("baseline", "pipeline", "storage"), run_pipeline_sections),
            (("universe",), run_universe_section),
            (("scrape",), run_scrape_section),
            (("memory",), run_memory_section),
        ]
        for names, step in steps:
            if not options.wants(*names):
                continue
            begun = time.monotonic()
            result = step(options, resources, progress)
            if names == ("baseline", "pipeline", "storage"):
                sections.update(result)
            else:
                sections[names[0]] = result
            durations["+".join(n for n in names if options.wants(n))] = round(
                time.monotonic() - begun, 1
            )
        failed = False
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        first = (str(reason).strip().splitlines() or [type(reason).__name__])[0]
        raise BenchError(
            f"a query on a bench database failed ({type(reason).__name__}: {first}); "
            "this is a bug of the bench or of a migration: please report it"
        ) from exc
    finally:
        progress.section = "bench"
        logs = sorted(resources.root.glob("*/children.log")) if failed else []
        resources.cleanup(keep_logs=bool(logs))
        if logs:
            progress.say(f"the child processes' logs are in {resources.root}")
    machine["load_average_at_end"] = load_average()
    return assemble(options, machine, sections, durations, time.monotonic() - started)
