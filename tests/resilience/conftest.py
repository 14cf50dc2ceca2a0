"""Private services for the fault suite: one PostgreSQL cluster for the session (a fresh
database per scenario, cloned from a migrated template), one private redis-server per
scenario, the MEXC simulator, the secrets every process is given, the results file, and the
soak running in the background on services of its own."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app import migrate
from app.exchange.simulator import SimulatorServer
from tests.resilience.results import Results
from tests.resilience.services import PrivatePostgres, PrivateRedis, missing_tools
from tests.resilience.soak import Soak
from tests.resilience.stack import SYMBOLS, Secrets, Stack

TEMPLATE = "cdb_template"

# What every scenario's processes run with (a scenario may add or override).
SETTINGS = {
    "SYMBOL_WHITELIST": ",".join(SYMBOLS),
    "TOP_N": str(len(SYMBOLS)),
    "MIN_QUOTE_VOLUME": "0",
    "INTERVAL": "1m",
    "LOOKBACK_MINUTES": "2",
    "DATA_STALE_TIMEOUT_SEC": "15",
    "MARKET_DATA_INTERVAL_SEC": "5",
    "RECONCILE_INTERVAL_SEC": "5",
    # Small positions on a large account: the drops that trigger stop-losses cost little, so
    # the daily drawdown halt never ends the trading of a long soak.
    "INITIAL_CAPITAL": "100000",
    "MAX_POSITION_PCT": "0.01",
    "MAX_EXPOSURE_PCT": "0.50",
    "MAX_DAILY_DRAWDOWN_PCT": "0.20",
    "MEXC_TIMEOUT_SEC": "2",
    "MEXC_MAX_RETRIES": "2",
    "MEXC_WEIGHT_BUDGET": "500",
    "LOG_LEVEL": "INFO",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.resilience)


@pytest.fixture(scope="session")
def tools() -> None:
    missing = missing_tools()
    if missing:
        message = "the resilience suite needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def secrets() -> Secrets:
    return Secrets.generate()


@pytest.fixture(scope="session")
def pg(tools, secrets) -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres(secrets.postgres_password)
    try:
        cluster.start()
        cluster.create_database(TEMPLATE)
        migrate.upgrade(cluster.url(TEMPLATE))
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def sim() -> Iterator[SimulatorServer]:
    # MEXC's weight limit is the client's business (MEXC_WEIGHT_BUDGET); the soak drives the
    # simulator faster than one process's 500 per 10 s, so its own limit is lifted.
    with SimulatorServer(n_symbols=30, seed=7, weight_limit=1_000_000) as server:
        yield server


@pytest.fixture(scope="session", autouse=True)
def soak(request, tools, secrets, tmp_path_factory) -> Iterator[Soak | None]:
    """The soak's pipeline, started with the session when test_soak is to run, so it runs in
    the background of every other scenario, on services of its own (see soak.py)."""
    if not any(item.name == "test_soak" for item in request.session.items):
        yield None
        return
    runner = Soak(tmp_path_factory.mktemp("soak"), secrets, SETTINGS)
    try:
        yield runner.start()
    finally:
        runner.close()


@pytest.fixture(scope="session")
def results(tmp_path_factory, pytestconfig) -> Results:
    explicit = os.environ.get("CDB_RESILIENCE_RESULTS")
    path = Path(explicit) if explicit else tmp_path_factory.getbasetemp() / "resilience"
    mirror = None  # an explicit path (e.g. a long soak's) leaves the last results alone
    cache = getattr(pytestconfig, "cache", None)  # None with -p no:cacheprovider
    if not explicit and cache is not None:
        mirror = cache.mkdir("resilience") / "last.json"
    return Results(path / "results.json" if path.suffix != ".json" else path, mirror)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    path = getattr(config, "_resilience_results", None)
    if path is not None:
        terminalreporter.write_line(f"resilience results: {path}")


@pytest.fixture
def make_stack(request, pg, sim, secrets, results, tmp_path) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []
    redises: list[PrivateRedis] = []

    def make(**settings: str) -> Stack:
        name = re.sub(r"[^a-z0-9]", "", request.node.name.lower())[:24] or "scenario"
        database = f"cdb_{name}_{uuid.uuid4().hex[:6]}"
        pg.create_database(database, template=TEMPLATE)
        redis_server = PrivateRedis(secrets.redis_password)
        redises.append(redis_server)
        redis_server.start()
        folder = tmp_path / f"stack{len(stacks)}"
        folder.mkdir()
        stack = Stack(
            name=name,
            redis=redis_server,
            pg=pg,
            database=database,
            sim_url=sim.url,
            secrets=secrets,
            folder=folder,
            settings={**SETTINGS, **settings},
        )
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()
    for server in redises:
        server.close()


@pytest.fixture(autouse=True)
def _outcome(request, results) -> Iterator[None]:
    """Each scenario's entry in the results: passed or failed, and how long it took."""
    request.config._resilience_results = results.path
    started = time.monotonic()
    yield
    scenario = results.data["scenarios"].get(request.node.name)
    if scenario is not None:
        scenario.setdefault("duration_s", round(time.monotonic() - started, 1))
        report = getattr(request.node, "rep_call", None)
        scenario["outcome"] = "failed" if report is None or report.failed else "passed"
        results.save()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report
