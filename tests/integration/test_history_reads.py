"""Reads every pipeline run makes must not grow with the history kept (decisions for good,
candles for the retention window): each is answered through an index, a probe or a few rows
per symbol, not by reading everything stored. On both backends; the read plan is checked
where the database says how it reads.

- Risk's undecided signals: `NOT EXISTS` on the decisions' unique signal_id, not
  `NOT IN (SELECT signal_id FROM risk_decisions)` (≈ 120 ms a risk run at 300,000 decisions
  on PostgreSQL).
- Signals' newest candle: one index probe per symbol, not a max() over every stored candle
  of the symbols (≈ 10 ms a signals run after a simulated month, `cdb bench`)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import create_engine, event, insert, text

from app import migrate
from app.models import Kline, MarketDataRun, RiskDecisionRecord, SignalRecord
from app.services.risk import _PENDING_SIGNALS
from app.services.signals import NEWEST_BATCH, newest_kline
from tests.conftest import run_row

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RUNS = 2_000
PER_RUN = 3


def _seed(conn) -> tuple[int, list[int]]:
    """RUNS runs of PER_RUN signals each, all decided except in the last run, where the
    middle one is; returns the last run's id and its undecided signals in deciding order."""
    conn.execute(insert(MarketDataRun.__table__), [run_row(f"run-{n}", T0) for n in range(RUNS)])
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


def _plan_nodes(conn, explain: str, parameters=None) -> list[dict]:
    """Every node of a PostgreSQL plan (`explain`: an EXPLAIN … FORMAT JSON statement)."""
    found, nodes = [], [conn.exec_driver_sql(explain, parameters).scalar()[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes.extend(node.get("Plans", []))
        found.append(node)
    return found


def _reads_of_decisions(conn, backend: str, run_id: int) -> list[str]:
    """How the query's plan reads risk_decisions: one line per access."""
    query = _PENDING_SIGNALS.params(run_id=run_id)
    compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
    if backend == "sqlite":
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")
        return [row[-1] for row in rows if "risk_decisions" in row[-1]]
    conn.execute(text("ANALYZE"))
    return [
        f"{node['Node Type']} {node.get('Index Name', '')}".strip()
        for node in _plan_nodes(conn, f"EXPLAIN (FORMAT JSON) {compiled}")
        if node.get("Relation Name") == "risk_decisions"
    ]


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


MINUTES = 1_500
SYMBOLS = [f"K{i:02d}USDT" for i in range(NEWEST_BATCH + 5)]  # SQLite: two statements


def _seed_klines(conn) -> dict[str, datetime]:
    """MINUTES one-minute candles per symbol, the last symbol's newest (it is read by the
    second statement), plus a later 5-minute series that must not count; returns each
    symbol's newest 1-minute open time."""
    last = len(SYMBOLS) - 1
    newest = {symbol: T0 - timedelta(minutes=last - i) for i, symbol in enumerate(SYMBOLS)}
    rows = []
    for symbol, newest_open in newest.items():
        for interval, step in (("1m", 1), ("5m", 5)):
            for k in range(MINUTES // step):
                opened = (
                    newest_open
                    - timedelta(minutes=k * step)
                    + (timedelta(hours=1) if step == 5 else timedelta(0))
                )
                rows.append(
                    {
                        "symbol": symbol,
                        "interval": interval,
                        "open_time": opened,
                        "open": D(1),
                        "high": D(1),
                        "low": D(1),
                        "close": D(1),
                        "volume": D(1),
                        "close_time": opened + timedelta(seconds=59),
                        "quote_volume": None,
                    }
                )
    conn.execute(insert(Kline.__table__), rows)
    return newest


def _kline_rows_read(conn, symbols: list[str]) -> int:
    """How many candle rows PostgreSQL reads for newest_kline(symbols): each statement it
    runs, run again under EXPLAIN ANALYZE with the same parameters. (A max() may be planned
    as a backward scan of the open_time index that skips other symbols' and intervals' newer
    candles one by one, or as a read of every candle of the symbols.)"""
    conn.execute(text("ANALYZE klines"))
    ran = []

    def grab(_conn, _cursor, statement, parameters, _context, _many) -> None:
        ran.append((statement, parameters))

    event.listen(conn, "before_cursor_execute", grab)
    try:
        newest_kline(conn, symbols, "1m")
    finally:
        event.remove(conn, "before_cursor_execute", grab)
    return sum(  # the rows each scan of klines returned or filtered out
        (node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"]
        for statement, parameters in ran
        for node in _plan_nodes(conn, f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters)
        if node.get("Relation Name") == "klines"
    )


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_the_newest_candle_is_one_probe_per_symbol(backend, empty_pg_url, tmp_path):
    url = empty_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path}/cdb.sqlite3"
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            newest = _seed_klines(conn)
            assert newest_kline(conn, SYMBOLS, "1m") == T0 == newest[SYMBOLS[-1]]
            assert newest_kline(conn, SYMBOLS[3:5], "1m") == newest[SYMBOLS[4]]
            assert newest_kline(conn, SYMBOLS[:NEWEST_BATCH], "1m") < T0
            assert newest_kline(conn, ["NOCANDLESUSDT"], "1m") is None
            assert newest_kline(conn, [], "1m") is None
            if backend == "postgresql":
                assert _kline_rows_read(conn, SYMBOLS) == len(SYMBOLS)  # not MINUTES each
    finally:
        engine.dispose()
