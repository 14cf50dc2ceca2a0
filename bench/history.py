"""The universe's all-tickers history from before the bench's first cycle.

The strategy judges every pair from the universe snapshots of the last look-back (15 min by
default). A bench section starts on an empty database and runs for a minute or two, so
without this every pair but the fetched ones would be "warming up" in every measured cycle:
counted, not judged, and no would-be trade stored. That is the first quarter of an hour of
a bot, not the hours after it. So before the measured cycles the bench stores the snapshots
the runs of the look-back before them would have stored: one every SPACING, with each pair's
price in the simulator at that moment (the last trade, as its all-tickers answer gives it),
each under a market-data run of its own that made no signal and whose chain is done.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Engine, insert, select

from app.exchange.simulator.market import SimulatedMarket
from app.models import MarketDataRun, UniverseSnapshot
from app.services.universe import decode, snapshot_row

# The strategy takes the newest snapshot up to one candle interval (1 min) before each moment
# it looks back to: one every 30 s leaves none without.
SPACING = timedelta(seconds=30)
MARGIN = timedelta(minutes=2)  # beyond the look-back, as a running bot's history reaches


class _Price(NamedTuple):
    symbol: str
    last_price: Decimal


def seed_universe_history(engine: Engine, market: SimulatedMarket, lookback_minutes: int) -> int:
    """Store the snapshots of the look-back (plus MARGIN) before the oldest stored one, for
    the pairs it holds; returns how many."""
    with engine.begin() as conn:
        oldest = conn.execute(
            select(UniverseSnapshot.run_id, UniverseSnapshot.taken_at, UniverseSnapshot.data)
            .order_by(UniverseSnapshot.taken_at)
            .limit(1)
        ).one()
        symbols = list(decode(oldest).prices)
        start = oldest.taken_at - timedelta(minutes=lookback_minutes) - MARGIN
        moments = _moments(start, oldest.taken_at)
        for n, moment in enumerate(moments):
            run_id = conn.execute(
                insert(MarketDataRun.__table__).returning(MarketDataRun.__table__.c.id),
                _run(f"bench-history-{n}", moment),
            ).scalar_one()
            ms = int(moment.timestamp() * 1000)
            prices = [_Price(symbol, market.price(symbol, ms)) for symbol in symbols]
            conn.execute(insert(UniverseSnapshot.__table__), snapshot_row(run_id, moment, prices))
    return len(moments)


def _moments(start: datetime, end: datetime) -> list[datetime]:
    moments = []
    moment = start
    while moment < end:
        moments.append(moment)
        moment += SPACING
    return moments


def _run(run_key: str, at: datetime) -> dict[str, object]:
    return {
        "run_key": run_key,
        "trigger": "bench",
        "status": "ok",
        "started_at": at,
        "finished_at": at,
        "parameters": {},
        "screened_symbols": [],
        "stored_symbols": [],
        "rejections": [],
        "retries": [],
        "signals_done_at": at,
        "risk_done_at": at,
        "execution_done_at": at,
    }
