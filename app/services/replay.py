"""Export recorded market-data runs, and replay them through the same signal, risk and
execution code on a throwaway database, with the data's clock instead of the wall clock."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select

from app import migrate
from app.config import Settings
from app.extensions import Database
from app.models import (
    Base,
    BookSnapshot,
    FillRecord,
    Kline,
    LatestTicker,
    Market,
    MarketDataRun,
    Order,
    Portfolio,
    RiskDecisionRecord,
    TickerSnapshot,
)
from app.services import replay_format as fmt
from app.services.execution import execute_run
from app.services.market_data import kline_limit
from app.services.replay_format import FORMAT, ReplayError
from app.services.risk import decide_run
from app.services.signals import run_signals
from app.services.store import upsert

__all__ = ["FORMAT", "ReplayError", "export_session", "replay_session"]


def _dump(row: Base) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        if isinstance(value, Decimal):
            value = format(value, "f")
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[column.key] = value
    return out


def export_session(
    db: Database, settings: Settings, out: TextIO, first: int | None, last: int | None
) -> int:
    """Write the finished runs in [first, last] as JSON lines; returns how many."""
    limit = kline_limit(settings.interval, settings.lookback_minutes)
    count = 0
    with db.transaction() as session:
        header = {
            "type": "header",
            "format": FORMAT,
            "interval": settings.interval,
            "lookback_minutes": settings.lookback_minutes,
        }
        out.write(json.dumps(header) + "\n")
        markets = [_dump(m) for m in session.scalars(select(Market).order_by(Market.symbol))]
        out.write(json.dumps({"type": "markets", "markets": markets}) + "\n")
        query = select(MarketDataRun).where(MarketDataRun.status != "running")
        if first is not None:
            query = query.where(MarketDataRun.id >= first)
        if last is not None:
            query = query.where(MarketDataRun.id <= last)
        for run in session.scalars(query.order_by(MarketDataRun.id)):
            klines = []
            for symbol in run.stored_symbols:
                klines += [
                    _dump(k)
                    for k in session.scalars(
                        select(Kline)
                        .where(
                            Kline.symbol == symbol,
                            Kline.interval == settings.interval,
                            Kline.open_time <= run.started_at,
                        )
                        .order_by(Kline.open_time.desc())
                        .limit(limit)
                    )
                ]
            record = {
                "type": "run",
                "run": _dump(run),
                "tickers": [
                    _dump(t)
                    for t in session.scalars(
                        select(TickerSnapshot).where(TickerSnapshot.run_id == run.id)
                    )
                ],
                "books": [
                    _dump(b)
                    for b in session.scalars(
                        select(BookSnapshot).where(BookSnapshot.run_id == run.id)
                    )
                ],
                "klines": klines,
            }
            out.write(json.dumps(record) + "\n")
            count += 1
    return count


def replay_session(
    settings: Settings, source: TextIO, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Feed every recorded run through signals → risk → execution; returns the summary.

    The file is checked line by line as it is read (replay_format): a malformed or hostile
    file raises ReplayError, and nothing outlives the throwaway database, which is made when
    the first record after the header needs it."""
    with tempfile.TemporaryDirectory(prefix="cdb-replay-") as folder:
        url = f"sqlite:///{Path(folder) / 'replay.sqlite3'}"
        db: Database | None = None
        try:
            runs = 0
            for _, record in fmt.records(iter(source)):
                if isinstance(record, fmt.Header):
                    settings = settings.model_copy(
                        update={
                            "database_url": url,
                            "interval": record.interval,
                            "lookback_minutes": record.lookback_minutes,
                        }
                    )
                    continue
                if db is None:
                    migrate.upgrade(url)
                    db = Database()
                    db.configure(url)
                if isinstance(record, fmt.Markets):
                    with db.transaction() as session:
                        upsert(session, Market, [fmt.as_row(m) for m in record.markets], ["symbol"])
                else:
                    _replay_run(db, settings, record)
                    runs += 1
                    if progress:
                        progress(runs)
            if db is None or runs == 0:
                raise ReplayError(
                    "the file holds no market-data run: nothing to replay (`cdb export` writes "
                    "the runs of the database it reads)"
                )
            return _summary(db, runs)
        finally:
            if db is not None:
                db.dispose()


def _replay_run(db: Database, settings: Settings, record: fmt.Run) -> None:
    _import_run(db, record)
    moment = fmt.moment(record.run)

    def clock() -> datetime:
        return moment

    run_id = record.run.id
    run_signals(db, settings, run_id, clock)
    decide_run(db, settings, run_id, clock)
    execute_run(db, settings, run_id, clock)


def _import_run(db: Database, record: fmt.Run) -> None:
    run = fmt.as_row(record.run)
    run["data_time"] = max((t.close_time for t in record.tickers), default=None)
    latest = [
        {
            "symbol": t.symbol,
            "run_id": t.run_id,
            "last_price": t.last_price,
            "bid_price": t.bid_price,
            "ask_price": t.ask_price,
            "close_time": t.close_time,
        }
        for t in record.tickers
    ]
    with db.transaction() as session:
        upsert(session, MarketDataRun, [run], ["id"])
        upsert(session, LatestTicker, latest, ["symbol"])
        upsert(
            session, TickerSnapshot, [fmt.as_row(t) for t in record.tickers], ["run_id", "symbol"]
        )
        upsert(session, BookSnapshot, [fmt.book_row(b) for b in record.books], ["run_id", "symbol"])
        upsert(
            session,
            Kline,
            [fmt.kline_row(k) for k in record.klines],
            ["symbol", "interval", "open_time"],
        )


def _summary(db: Database, runs: int) -> dict[str, Any]:
    with db.transaction() as session:
        portfolio = session.scalar(select(Portfolio))
        decisions = session.scalars(select(RiskDecisionRecord).order_by(RiskDecisionRecord.id))
        orders = session.scalars(select(Order).order_by(Order.id)).all()
        fills = session.scalars(select(FillRecord).order_by(FillRecord.id)).all()
        trail = json.dumps(
            {
                "decisions": [
                    [d.signal_id, d.approved, str(d.size), d.rejected_by] for d in decisions
                ],
                "fills": [
                    [f.order_id, f.side, str(f.qty), str(f.price), str(f.fee)] for f in fills
                ],
            },
            sort_keys=True,
        )
        return {
            "runs": runs,
            "orders": len(orders),
            "fills": len(fills),
            "rejected_orders": sum(1 for o in orders if o.status == "rejected"),
            "cash": portfolio.cash if portfolio else None,
            "realized_pnl": portfolio.realized_pnl if portfolio else None,
            "fees_paid": portfolio.fees_paid if portfolio else None,
            "halted": portfolio.halted if portfolio else False,
            "digest": hashlib.sha256(trail.encode()).hexdigest(),
        }
