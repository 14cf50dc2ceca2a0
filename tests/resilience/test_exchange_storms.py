"""Scenario 5: exchange storms while beat (and a run sent into each storm) drive the real
workers — 429 with Retry-After, 5xx, timeouts, malformed JSON, a firewall 403, a frozen
market — and hostile symbol names in MEXC's answers (added by a proxy in front of the
simulator, which serves none itself).

Every run during a storm ends (`ok` after retries, or `failed` with the error that says
why), still reaches execution, and a good run follows once the storm has passed. The frozen
market is refused as stale and pauses new orders until fresh data arrives."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text

from app.config import load_settings
from app.extensions import Database
from app.services.exchange import make_client
from app.services.market_data import run_market_data
from tests.resilience.audit import assert_clean
from tests.resilience.hostile import (
    BAD_FIELDS,
    BOGUS_PRICE,
    HOSTILE_NAMES,
    SHADOW_NAMES,
    HostileProxy,
)
from tests.resilience.procs import wait_until
from tests.resilience.scenario import finish, record
from tests.resilience.stack import driven, utc

# (label, fault body, seconds the fault stands before a run is sent into it, what the error of a
# run failed by it must name)
STORMS = [
    ("429 + Retry-After", {"mode": "rate_limit", "retry_after": 1}, 0, "RateLimited"),
    ("503", {"mode": "server_error", "status": 503}, 0, "Unavailable"),
    ("500", {"mode": "server_error", "status": 500}, 0, "Unavailable"),
    ("timeouts", {"mode": "timeout", "delay": 3}, 0, "Timeout"),
    ("malformed JSON", {"mode": "malformed"}, 0, "Malformed"),
    ("403 firewall", {"mode": "forbidden"}, 0, "Firewall"),
    # frozen longer than DATA_STALE_TIMEOUT_SEC (10 s here): the data is refused as stale
    ("frozen market", {"mode": "stale"}, 11, "no symbol passed"),
]


def _runs_between(stack, start: float, end: float) -> list[dict]:
    return stack.rows(
        "SELECT id, status, error, retries, rejections FROM market_data_runs "
        "WHERE started_at >= :a AND started_at < :b ORDER BY id",
        a=utc(start),
        b=utc(end),
    )


@pytest.mark.timeout(240)
def test_exchange_storms(make_stack, results, sim, request):
    name = request.node.name
    results.scenario(name)
    stack = make_stack(DATA_STALE_TIMEOUT_SEC="10")
    faults_url = f"{sim.url}/_sim/faults"
    httpx.delete(faults_url).raise_for_status()
    storms = {}
    with HostileProxy(sim.url) as proxy:
        proxy.inject(HOSTILE_NAMES)  # from the first exchangeInfo on
        stack.sim_url = proxy.url
        worker = stack.start_worker()
        stack.start_beat()
        with driven(sim.url):
            stack.wait_recovered(time.time(), 30, "a first run through execution")
            for label, body, hold, named in STORMS:
                # The fault stands while a run is sent into it (beat's runs meet it too), then
                # is cleared and the next run must be good again.
                start = time.time()
                httpx.post(faults_url, json=body).raise_for_status()
                time.sleep(hold)
                stormed = stack.send_market_data()
                wait_until(lambda t=stormed: stack.run_done(t), 45, f"a run in the {label} storm")
                httpx.delete(faults_url).raise_for_status()
                cleared = time.time()
                after = stack.send_market_data()
                run = wait_until(lambda t=after: stack.run_done(t), 45, f"a run after {label}")
                done = run["execution_done_at"].timestamp() if run["status"] != "failed" else 0
                recovery = round(done - start, 2) if done else None
                runs = _runs_between(stack, start, cleared)
                storms[label] = {
                    "runs": len(runs),
                    "statuses": [r["status"] for r in runs],
                    # Why each run that failed failed: its error and its per-symbol rejections.
                    "failures": [
                        " | ".join([r["error"] or "", *(x["reason"] for x in r["rejections"])])
                        for r in runs
                        if r["status"] == "failed"
                    ],
                    "retries": sum(len(r["retries"]) for r in runs),
                    "named": named,
                }
                results.fault(
                    name,
                    f"exchange {label}",
                    start,
                    recovery,
                    storm_s=round(cleared - start, 2),
                    after_clear_s=round(done - cleared, 2) if done else None,
                )
        hostile_rejected = sum(
            1 for child in stack.children for _, line in child.lines if "market rejected" in line
        )
    stored_hostile = stack.rows(
        "SELECT symbol FROM markets WHERE symbol !~ '^[A-Z0-9]{2,30}$' UNION ALL "
        "SELECT symbol FROM ticker_snapshots WHERE symbol !~ '^[A-Z0-9]{2,30}$' UNION ALL "
        "SELECT symbol FROM signals WHERE symbol !~ '^[A-Z0-9]{2,30}$' UNION ALL "
        "SELECT symbol FROM evaluations WHERE symbol !~ '^[A-Z0-9]{2,30}$'"
    )
    stale_alerts = stack.scalar("SELECT count(*) FROM alerts WHERE code = 'DATA_STALE'")
    paused_at_end = stack.scalar("SELECT stale_paused FROM portfolios")
    record(
        results,
        name,
        storms=len(STORMS),
        storm_runs=storms,
        hostile_names_served=len(HOSTILE_NAMES),
        hostile_names_rejected_at_refresh=hostile_rejected,
        hostile_names_stored=len(stored_hostile),
        data_stale_alerts=stale_alerts,
    )
    result = finish(stack, results, name, settle_timeout=60)

    assert worker.alive
    for label, storm in storms.items():
        assert storm["runs"] >= 1, (label, storm)
        for why in storm["failures"]:
            assert storm["named"].lower() in why.lower(), (label, why[:500])
    assert all(f["recovery_s"] is not None for f in results.data["scenarios"][name]["faults"])
    assert stale_alerts >= 1 and paused_at_end is False
    assert hostile_rejected >= len(HOSTILE_NAMES) and not stored_hostile, stored_hostile
    assert_clean(result, worker.tail(30))


def _boundary_run(pg, sim, names, key: str) -> tuple[object, Database]:
    database = f"cdb_hostile_{key}_{int(time.time() * 1000) % 10**8}"
    pg.create_database(database, template="cdb_template")
    url = pg.url(database)
    db = Database()
    db.configure(url)
    with HostileProxy(sim.url) as proxy:
        proxy.inject(names)
        settings = load_settings(
            env_file=None,
            database_url=url,
            mexc_base_url=proxy.url,
            min_quote_volume=0,
            top_n=40,
            mexc_max_retries=1,
        )
        with make_client(settings) as client:
            summary = run_market_data(
                db,
                settings,
                client,
                run_key=f"hostile-{key}",
                trigger="manual",
                clock=lambda: datetime.now(UTC),
            )
    return summary, db


@pytest.mark.timeout(120)
def test_hostile_symbols_at_the_client_boundary(pg, sim, results, request):
    """The real client and market-data service against the proxy, no whitelist (the whole
    universe): hostile names, second entries for a real symbol at a bogus price (by the same
    name, or one that trims to it), and symbol fields that are no string at all. Each must
    be refused on its own, the rest of the answer used."""
    name = request.node.name
    results.scenario(name)
    found = {}
    httpx.delete(f"{sim.url}/_sim/faults").raise_for_status()
    for key, names in (("names", HOSTILE_NAMES), ("shadow", SHADOW_NAMES), ("bad", BAD_FIELDS)):
        summary, db = _boundary_run(pg, sim, names, key)
        with db.engine.connect() as conn:
            bogus = conn.execute(
                text("SELECT symbol, last_price FROM ticker_snapshots WHERE last_price = :p"),
                {"p": BOGUS_PRICE},
            ).all()
            markets = conn.execute(text("SELECT count(*) FROM markets")).scalar()
        db.dispose()
        found[key] = {
            "status": summary.status,
            "error": (summary.error or "")[:200],
            "stored": len(summary.stored),
            "markets": markets,
            "bogus_prices_stored": [tuple(map(str, row)) for row in bogus],
        }
    record(results, name, hostile_inputs=len(HOSTILE_NAMES + SHADOW_NAMES + BAD_FIELDS), **found)

    problems = []
    if found["names"]["status"] == "failed" or found["names"]["stored"] == 0:
        problems.append(f"hostile names failed the run: {found['names']}")
    if found["shadow"]["bogus_prices_stored"]:
        problems.append(
            "a second entry for a real symbol (by its name, or one that trims to it) replaced "
            "that symbol's ticker with its bogus price: "
            f"{found['shadow']['bogus_prices_stored']}"
        )
    if found["bad"]["status"] == "failed":
        problems.append(
            f"one entry with a non-string symbol failed the whole run: {found['bad']['error']}"
        )
    results.data["scenarios"][name]["numbers"]["problems"] = problems
    results.save()
    assert not problems, "\n".join(problems)
