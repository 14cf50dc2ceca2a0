"""What `cdb bench` runs and how big: the full run, and --quick (under five minutes)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

SECTIONS = ("baseline", "pipeline", "universe", "scrape", "memory", "storage")


@dataclass(frozen=True)
class Options:
    quick: bool = False
    sqlite: bool = False
    sections: tuple[str, ...] = SECTIONS
    concurrency: int = 2  # worker processes, as `cdb up --concurrency` (default 2)
    sim_symbols: int = 200  # the simulator of the pipeline, scrape and memory sections
    top_n: int = 10
    warmup_runs: int = 5  # not measured: markets refresh, candle history, every pool process
    baseline_chains: int = 200
    pipeline_runs: int = 100  # per market (quiet, with trades)
    universe_symbols: int = 2500
    universe_runs: int = 40  # per TOP_N phase
    scrape_orders: int = 100_000
    scrape_requests: int = 200
    health_clients: int = 6
    health_samples: int = 300  # /health answers collected while /metrics is scraped
    memory_runs: tuple[int, int] = (1000, 10_000)
    month_days: float = 30.0
    month_trade_share: float = 0.1  # of the month's runs, those with a signal, order and fill

    @classmethod
    def preset(cls, quick: bool, **overrides: object) -> Options:
        """The full or the quick sizes, with the options given (None: the preset's)."""
        base = QUICK if quick else FULL
        names = {f.name for f in fields(cls)}
        given = {k: v for k, v in overrides.items() if v is not None and k in names}
        return replace(base, **given)

    def wants(self, *sections: str) -> bool:
        return any(section in self.sections for section in sections)


FULL = Options()
QUICK = Options(
    quick=True,
    baseline_chains=100,
    pipeline_runs=30,
    universe_runs=3,
    scrape_requests=60,
    health_samples=60,
    memory_runs=(100, 400),
    month_days=1.0,
)
