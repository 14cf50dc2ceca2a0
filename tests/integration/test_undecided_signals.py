"""Risk reads a run's undecided signals without going through every decision ever made.

Decisions are kept for good, so the read must find "not decided yet" through the decisions'
unique signal_id (an anti-join, one index probe per signal of the run), not by scanning the
whole table each run: with a NOT IN over every decision that read grew with history
(≈ 120 ms per risk run at 300,000 decisions on PostgreSQL). Checked on both backends, with
the order risk decides them in: exits first, then the strongest."""

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from sqlalchemy import create_engine, insert, text

from app import migrate
from app.models import MarketDataRun, RiskDecisionRecord, SignalRecord
from app.services.risk import _PENDING_SIGNALS

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RUNS = 2_000
PER_RUN = 3


def _seed(conn) -> tuple[int, list[int]]:
    """RUNS runs of PER_RUN signals each, all decided except in the last run, where the
    middle one is; returns the last run's id and its undecided signals in deciding order."""
    conn.execute(
        insert(MarketDataRun.__table__),
        [
            {
                "run_key": f"run-{n}",
                "trigger": "beat",
                "status": "ok",
                "started_at": T0,
                "parameters": {},
                "screened_symbols": [],
                "stored_symbols": [],
                "rejections": [],
                "retries": [],
            }
            for n in range(RUNS)
        ],
    )
    run_ids = [row[0] for row in conn.execute(text("SELECT id FROM market_data_runs ORDER BY id"))]
    strengths = {"AUSDT": D("0.2"), "BUSDT": D("0.9"), "CUSDT": D("0.5")}
    conn.execute(
        insert(SignalRecord.__table__),
        [
            {
                "run_id": run_id,
                "symbol": symbol,
                "strategy": "momentum",
                "direction": "SELL" if symbol == "AUSDT" else "BUY",
                "size": D("1"),
                "signal_strength": strength,
                "price": D("10"),
                "is_exit": symbol == "AUSDT",
                "reason": "test",
                "timestamp": T0,
            }
            for run_id in run_ids
            for symbol, strength in strengths.items()
        ],
    )
    last = run_ids[-1]
    ids = {
        (run_id, symbol): signal_id
        for signal_id, run_id, symbol in conn.execute(
            text("SELECT id, run_id, symbol FROM signals")
        )
    }
    decided = [key for key in ids if key[0] != last or key[1] == "CUSDT"]
    conn.execute(
        insert(RiskDecisionRecord.__table__),
        [
            {
                "signal_id": ids[key],
                "approved": False,
                "size": D(0),
                "verdicts": [],
                "decided_at": T0,
            }
            for key in decided
        ],
    )
    return last, [ids[(last, "AUSDT")], ids[(last, "BUSDT")]]


def _reads_of_decisions(conn, backend: str, run_id: int) -> list[str]:
    """How the query's plan reads risk_decisions: one line per access."""
    query = _PENDING_SIGNALS.params(run_id=run_id)
    compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
    if backend == "sqlite":
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
        return [row[-1] for row in rows if "risk_decisions" in row[-1]]
    conn.execute(text("ANALYZE"))
    plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}").scalar()
    reads, nodes = [], [plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        if node.get("Relation Name") == "risk_decisions":
            reads.append(f"{node['Node Type']} {node.get('Index Name', '')}".strip())
    return reads


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_undecided_signals_are_found_by_index_not_by_scanning_every_decision(
    backend, empty_pg_url, tmp_path
):
    url = empty_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path}/cdb.sqlite3"
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            last, expected = _seed(conn)
            pending = conn.execute(_PENDING_SIGNALS, {"run_id": last}).all()
            assert [row.id for row in pending] == expected  # the exit, then the stronger
            assert {row.symbol for row in pending} == {"AUSDT", "BUSDT"}
            assert pending[0].is_exit and pending[0].direction == "SELL"

            reads = _reads_of_decisions(conn, backend, last)
    finally:
        engine.dispose()
    if backend == "postgresql":
        assert reads and all(
            read.startswith("Index") and read.endswith("signal_id") for read in reads
        ), reads
    else:
        assert reads and all(
            read.startswith("SEARCH risk_decisions USING") and "(signal_id=?)" in read
            for read in reads
        ), reads
