"""The whole universe's price history, from the one all-tickers request every run makes.

Each run stores one compressed row (`universe_snapshots`): every eligible pair's last price.
The strategy judges every pair each cycle from three of them — now, the current candle's
open, a look-back ago (`view_at`) — so seeing 2,500 pairs costs one request and three small
reads, not 2,500 kline requests. Rows older than the look-back are pruned by retention.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.market import KLINE_INTERVALS, Ticker24h, candle_open
from app.domain.strategies import UniverseView
from app.domain.strategies.momentum import window_candles
from app.models import UniverseSnapshot

FORMAT = 1


@dataclass(frozen=True, slots=True)
class Snapshot:
    run_id: int
    taken_at: datetime
    prices: dict[str, Decimal]


def encode(tickers: Iterable[Ticker24h]) -> tuple[int, bytes]:
    symbols, prices = [], []
    for ticker in tickers:
        if ticker.last_price is not None:
            symbols.append(ticker.symbol)
            prices.append(format(ticker.last_price, "f"))
    data = json.dumps({"v": FORMAT, "symbols": symbols, "last": prices}, separators=(",", ":"))
    return len(symbols), zlib.compress(data.encode(), 6)


def decode(row: UniverseSnapshot) -> Snapshot:
    data = json.loads(zlib.decompress(row.data))
    prices = dict(zip(data["symbols"], map(Decimal, data["last"]), strict=True))
    return Snapshot(row.run_id, row.taken_at, prices)


def snapshot_row(run_id: int, taken_at: datetime, tickers: Iterable[Ticker24h]) -> dict:
    count, data = encode(tickers)
    return {"run_id": run_id, "taken_at": taken_at, "symbols": count, "data": data}


def _at_or_before(session: Session, moment: datetime, not_before: datetime) -> Snapshot | None:
    row = session.scalar(
        select(UniverseSnapshot)
        .where(UniverseSnapshot.taken_at <= moment, UniverseSnapshot.taken_at >= not_before)
        .order_by(UniverseSnapshot.taken_at.desc())
        .limit(1)
    )
    return None if row is None else decode(row)


def oldest_time(session: Session) -> datetime | None:
    return session.scalar(
        select(UniverseSnapshot.taken_at).order_by(UniverseSnapshot.taken_at).limit(1)
    )


def reference_times(
    now: datetime, interval: str, lookback_minutes: int
) -> tuple[datetime, datetime]:
    """(the current candle's open, the close of the candle one look-back earlier) — the
    moments a candle-based momentum compares the price now with."""
    opened = candle_open(now, interval)
    n = window_candles(lookback_minutes, interval)
    step = timedelta(seconds=KLINE_INTERVALS[interval])
    return opened, opened - (n - 1) * step


def view_at(
    session: Session,
    now: datetime,
    latest: Mapping[str, Decimal],
    interval: str,
    lookback_minutes: int,
) -> UniverseView:
    """The universe now (`latest`) with the prices at the current candle's open and a
    look-back ago, each from the newest snapshot at or before that moment but not more than
    one interval before it (older data would stretch the window)."""
    opened, reference = reference_times(now, interval, lookback_minutes)
    tolerance = timedelta(seconds=KLINE_INTERVALS[interval])
    at_open = _at_or_before(session, opened, opened - tolerance)
    at_reference = _at_or_before(session, reference, reference - tolerance)
    oldest = oldest_time(session)
    return UniverseView(
        now=now,
        interval=interval,
        lookback_minutes=lookback_minutes,
        latest=latest,
        candle_open=None if at_open is None else at_open.prices,
        reference=None if at_reference is None else at_reference.prices,
        history_minutes=0.0 if oldest is None else max(0.0, (now - oldest).total_seconds() / 60),
    )


def snapshot_of_run(session: Session, run_id: int) -> Snapshot | None:
    row = session.get(UniverseSnapshot, run_id)
    return None if row is None else decode(row)
