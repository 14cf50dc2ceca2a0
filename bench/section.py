"""What every section starts and stops: its own database, simulator and `cdb up` children,
and what it reports about the configuration it measured with."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import redis
from sqlalchemy import Engine

from app.config import redact_url
from app.extensions import make_engine
from bench.driver import RunDriver
from bench.machine import load_average
from bench.market import Market
from bench.progress import Progress
from bench.resources import Resources, drop_database
from bench.stack import Running, start_stack


@dataclass
class Section:
    name: str
    running: Running
    engine: Engine
    redis: redis.Redis
    driver: RunDriver
    market: Market
    database_url: str
    values: dict[str, str]
    load_at_start: list[float] | None = None

    @property
    def symbols(self) -> list[str]:
        """The symbols the section's settings watch (SYMBOL_WHITELIST)."""
        return self.values["SYMBOL_WHITELIST"].split(",")

    def config(self, **extra: object) -> dict[str, object]:
        """The settings this section gave the children (the rest are the defaults)."""
        shown = {
            key: value
            for key, value in self.values.items()
            if key not in ("DATABASE_URL", "REDIS_URL", "MEXC_BASE_URL", "REDIS_KEY_PREFIX")
        }
        worker_argv = self.running.stack.argvs["worker"][0]
        return {
            "database": "sqlite" if self.database_url.startswith("sqlite") else "postgresql",
            "redis": redact_url(self.running.settings.broker_url),
            "simulator_symbols": self.market.n_symbols,
            "settings": shown,
            "worker": " ".join(["celery", *worker_argv[worker_argv.index("-A") :]]),
            "children": sorted(self.running.stack.wanted),
            "load_average_at_start": self.load_at_start,
            **extra,
        }


@contextlib.contextmanager
def open_section(
    name: str,
    resources: Resources,
    progress: Progress,
    settings: Callable[[Market], Mapping[str, str]],
    sim_symbols: int,
    concurrency: int,
    children: frozenset[str] = frozenset({"worker"}),
) -> Iterator[Section]:
    """A fresh database, a simulator and the children, with `settings(market)` on top of the
    database, Redis (a key prefix per section) and simulator URLs; all gone afterwards."""
    progress.section = name
    url = resources.new_database(name)
    engine = make_engine(url)
    client = resources.redis()
    try:
        progress.say(f"simulator with {sim_symbols} symbols")
        with Market(sim_symbols) as market:
            values = {
                "DATABASE_URL": url,
                "REDIS_URL": resources.redis_url,
                "REDIS_KEY_PREFIX": f"{resources.prefix}{name}:",
                "MEXC_BASE_URL": market.url,
                **settings(market),
            }
            progress.say(f"starting {', '.join(sorted(children))} as `cdb up` does")
            running = start_stack(values, resources.folder(name), children, concurrency)
            try:
                driver = RunDriver(running, engine, client)
                yield Section(
                    name, running, engine, client, driver, market, url, values, load_average()
                )
            finally:
                progress.say("stopping")
                running.stop()
    finally:
        engine.dispose()
        client.close()
        with contextlib.suppress(Exception):
            drop_database(resources.pg_admin_url, url)
            resources.databases.remove(url)
