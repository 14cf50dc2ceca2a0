"""/metrics and /health against the real web app, with 100,000 orders and fills stored.

Configuration: the web app as `cdb up` runs it (gunicorn, 2 workers, the shared metrics
folder), a worker and beat (so /health finds a recent beat run and fresh market data, and the
pipeline runs every MARKET_DATA_INTERVAL_SEC while the clients ask), the pipeline settings of
the trades market.

The rows: ten real runs with trades make the template (every one has a signal, a risk
decision, an order and a fill); bench.clone copies those runs' market_data_runs, signals,
risk_decisions, orders and fills, one run every 15 s further back in time, until the orders
number --scrape-orders; then the running totals /metrics reads are recounted from the tables
(app.services.counters.rebuild, where it exists) and PostgreSQL analyses the tables (as its
autovacuum would have).

Measured, with one client scraping /metrics back to back: idle (nothing else asks), then
while six clients poll /health (each at most once a second, the next call a second after the
previous one started, or at once when it took longer), until there are --scrape-requests
scrapes and enough /health answers for their percentiles (300; quick 60).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from bench.clone import Cloner
from bench.options import Options
from bench.pipeline import pipeline_settings
from bench.progress import Progress
from bench.resources import Resources
from bench.section import Section, open_section
from bench.stats import summary

CHAIN_TABLES = ("market_data_runs", "signals", "risk_decisions", "orders", "fills")
TEMPLATE_RUNS = 10
COPIES_PER_BATCH = 2000
HEALTH_PERIOD_SECONDS = 1.0
HEALTH_READY_SECONDS = 90
IDLE_HEALTH_CALLS = 5
WARMUP_REQUESTS = 10  # not measured: the first scrapes of each web process open connections


def run_scrape_section(options: Options, resources: Resources, progress: Progress) -> dict:
    with open_section(
        "scrape",
        resources,
        progress,
        pipeline_settings(options),
        options.sim_symbols,
        options.concurrency,
        children=frozenset({"worker", "web"}),
    ) as section:
        seeded = seed_orders(section, options, progress)
        progress.say("starting beat; waiting for /health to be ok")
        section.running.stack.spawn_later("beat")
        ready_s = wait_healthy(section)
        url = section.running.web_url
        time_requests(f"{url}/metrics", WARMUP_REQUESTS)  # each gunicorn worker's first ones
        progress.say(f"/metrics x {options.scrape_requests}, idle")
        idle = time_requests(f"{url}/metrics", options.scrape_requests)
        idle_health = time_requests(f"{url}/health", IDLE_HEALTH_CALLS)
        progress.say(
            f"/metrics back to back while {options.health_clients} clients poll /health, until "
            f"{options.scrape_requests} scrapes and {options.health_samples} /health answers"
        )
        with HealthPollers(f"{url}/health", options.health_clients) as pollers:
            loaded = time_requests(
                f"{url}/metrics",
                options.scrape_requests,
                until=lambda: pollers.count >= options.health_samples,
            )
        return {
            "config": section.config(
                web="gunicorn --workers 2 (as cdb up)",
                health_clients=options.health_clients,
                health_period_s=HEALTH_PERIOD_SECONDS,
            ),
            "seeded": seeded,
            "health_ok_after_s": ready_s,
            "metrics_idle_ms": idle["ms"],
            "metrics_idle_status": idle["status"],
            "metrics_bytes": idle["bytes"],
            "health_idle_ms": idle_health["ms"],
            "metrics_ms": loaded["ms"],
            "metrics_status": loaded["status"],
            "health_ms": summary(pollers.latencies),
            "health_status": dict(pollers.statuses),
            "health_failing_checks": dict(pollers.failing),
        }


def seed_orders(section: Section, options: Options, progress: Progress) -> dict:
    symbols = section.symbols
    driver, market, engine = section.driver, section.market, section.engine
    market.flatten(symbols)
    progress.say(f"{options.warmup_runs} warm-up and {TEMPLATE_RUNS} template runs with trades")
    driver.runs(options.warmup_runs)
    driver.runs(TEMPLATE_RUNS, before=lambda index: market.step(symbols, index))
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT r.id, count(o.id) AS orders FROM market_data_runs r "
                "JOIN orders o ON o.run_id = r.id WHERE r.execution_done_at IS NOT NULL "
                "GROUP BY r.id"
            )
        ).all()
        existing = conn.execute(text("SELECT count(*) FROM orders")).scalar() or 0
    template = [row.id for row in rows]
    per_copy = sum(row.orders for row in rows)
    started = time.monotonic()
    copies = 0
    if template and options.scrape_orders > existing:
        copies = math.ceil((options.scrape_orders - existing) / per_copy)
        cloner = Cloner(engine, template, tables=CHAIN_TABLES)
        shift = len(template) * section.running.settings.market_data_interval_sec
        report = progress.counter("copies of the template runs", copies)
        try:
            for first in range(1, copies + 1, COPIES_PER_BATCH):
                last = min(copies, first + COPIES_PER_BATCH - 1)
                cloner.copy_runs(first, last, shift)
                report(last)
        finally:
            cloner.drop_temp_tables()
    recounted = rebuild_counters(engine)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    with engine.connect() as conn:
        counts = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in CHAIN_TABLES
        }
    return {
        "template_runs": len(template),
        "copies": copies,
        "rows": counts,
        "counters_rebuilt": recounted,
        "seconds": round(time.monotonic() - started, 1),
    }


def rebuild_counters(engine) -> bool:  # type: ignore[no-untyped-def]
    """Recount the running totals /metrics reads, where the application keeps them."""
    try:
        counters = importlib.import_module("app.services.counters")
    except ImportError:
        return False
    rebuild = getattr(counters, "rebuild", None)
    if rebuild is None:
        return False
    with Session(engine) as session:
        rebuild(session)
        session.commit()
    return True


def wait_healthy(section: Section) -> float | None:
    """Seconds until /health answered 200 (None: it never did; the figures say so)."""
    started = time.monotonic()
    while time.monotonic() - started < HEALTH_READY_SECONDS:
        section.running.check_alive("web")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{section.running.web_url}/health", timeout=5).status_code == 200:
                return round(time.monotonic() - started, 1)
        time.sleep(1)
    return None


def time_requests(url: str, count: int, until: Callable[[], bool] | None = None) -> dict:
    """`count` GETs one after the other (and more, until `until()` is true)."""
    latencies, statuses, size = [], Counter(), 0
    with httpx.Client(timeout=30) as client:
        while len(latencies) < count or (until is not None and not until()):
            started = time.perf_counter()
            try:
                response = client.get(url)
                statuses[str(response.status_code)] += 1
                size = len(response.content)
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
            latencies.append((time.perf_counter() - started) * 1000)
    return {"ms": summary(latencies), "status": dict(statuses), "bytes": size}


class HealthPollers:
    """`clients` threads asking `url` about once a second each, until the block ends."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.clients = clients
        self.latencies: list[float] = []
        self.statuses: Counter[str] = Counter()
        self.failing: Counter[str] = Counter()  # the checks a 503 named
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __enter__(self) -> HealthPollers:
        for index in range(self.clients):
            thread = threading.Thread(target=self._poll, name=f"health-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
            time.sleep(HEALTH_PERIOD_SECONDS / self.clients)  # spread over the second
        return self

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.latencies)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(35)

    def _poll(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                failing: list[str] = []
                try:
                    response = client.get(self.url)
                    status = str(response.status_code)
                    if response.status_code != 200:
                        with contextlib.suppress(ValueError, AttributeError):
                            failing = list(response.json().get("failing") or [])
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                elapsed = time.perf_counter() - started
                with self._lock:
                    self.latencies.append(elapsed * 1000)
                    self.statuses[status] += 1
                    self.failing.update(failing)
                self._stop.wait(max(0.0, HEALTH_PERIOD_SECONDS - elapsed))
