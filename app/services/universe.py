"""The whole universe's price history, from the one all-tickers request every run makes.

Each run stores one compressed row (`universe_snapshots`): every eligible pair's last price.
The strategy judges every pair each cycle from three of them — now, the current candle's
open, a look-back ago (`view_at`) — so seeing 2,500 pairs costs one request and one small
read (plus the data of a snapshot not decoded in this process yet), not 2,500 kline
requests. Rows older than the look-back are pruned by retention.
"""

from __future__ import annotations

import json
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ScalarSelect, bindparam, func, select
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
    # Level 1: ≈ 0.7 ms for 2,375 prices here, against 2.6 ms at level 6, for 5 % more bytes.
    return len(symbols), zlib.compress(data.encode(), 1)


def decode(row: Any) -> Snapshot:
    """A stored snapshot (a row or object with run_id, taken_at and data), decoded once."""
    return _decoded(row.run_id, row.taken_at, row.data)


# Decoded snapshots, newest last: a row never changes once written (a re-fetched run writes
# a new one with its own time, hence the key), and the same few rows — the current candle's
# open, a look-back ago — serve every run of a few minutes, in market data and signals.
_DECODED: OrderedDict[tuple[int, datetime], Snapshot] = OrderedDict()
DECODED_KEPT = 8


def _decoded(run_id: int, taken_at: datetime, data: bytes) -> Snapshot:
    key = (run_id, taken_at)
    snapshot = _DECODED.get(key)
    if snapshot is None:
        parsed = json.loads(zlib.decompress(data))
        prices = dict(zip(parsed["symbols"], map(Decimal, parsed["last"]), strict=True))
        snapshot = _remember(Snapshot(run_id, taken_at, prices))
    else:
        _DECODED.move_to_end(key)
    return snapshot


def _remember(snapshot: Snapshot) -> Snapshot:
    """Keep a decoded snapshot (its prices are shared: read them, never change them)."""
    _DECODED[(snapshot.run_id, snapshot.taken_at)] = snapshot
    while len(_DECODED) > DECODED_KEPT:
        _DECODED.popitem(last=False)
    return snapshot


def snapshot_row(run_id: int, taken_at: datetime, tickers: Iterable[Ticker24h]) -> dict:
    count, data = encode(tickers)
    return {"run_id": run_id, "taken_at": taken_at, "symbols": count, "data": data}


def _at_or_before(moment: str, column: Any) -> ScalarSelect[Any]:
    return (
        select(column)
        .where(
            UniverseSnapshot.taken_at <= bindparam(moment),
            UniverseSnapshot.taken_at >= bindparam(f"{moment}_from"),
        )
        .order_by(UniverseSnapshot.taken_at.desc())
        .limit(1)
        .scalar_subquery()
    )


# Which snapshots a view needs (run and time of each) and the oldest one's time, in one
# round trip; their data is read only when they are not decoded already.
_REFERENCES = select(
    _at_or_before("opened", UniverseSnapshot.run_id),
    _at_or_before("opened", UniverseSnapshot.taken_at),
    _at_or_before("reference", UniverseSnapshot.run_id),
    _at_or_before("reference", UniverseSnapshot.taken_at),
    select(func.min(UniverseSnapshot.taken_at)).scalar_subquery(),
)
_ROWS = select(UniverseSnapshot.run_id, UniverseSnapshot.taken_at, UniverseSnapshot.data).where(
    UniverseSnapshot.run_id.in_(bindparam("run_ids", expanding=True))
)


def _snapshots(session: Session, wanted: list[tuple[int, datetime]]) -> dict[int, Snapshot]:
    """The snapshots (run id, taken at) decoded, by run id."""
    found = {key[0]: _DECODED[key] for key in wanted if key in _DECODED}
    missing = sorted({run_id for run_id, _ in wanted} - set(found))
    if missing:
        for row in session.connection().execute(_ROWS, {"run_ids": missing}):
            found[row.run_id] = _decoded(row.run_id, row.taken_at, row.data)
    return found


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
    moments = {
        "opened": opened,
        "opened_from": opened - tolerance,
        "reference": reference,
        "reference_from": reference - tolerance,
    }
    row = session.connection().execute(_REFERENCES, moments).one()
    open_run, open_time, reference_run, reference_time, oldest = row
    pairs = ((open_run, open_time), (reference_run, reference_time))
    wanted = [(run, taken) for run, taken in pairs if run is not None]
    found = _snapshots(session, wanted)
    at_open, at_reference = found.get(open_run), found.get(reference_run)
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
    """The run's snapshot (Core columns on the session's connection: no ORM object for a
    read every signals run makes)."""
    row = session.connection().execute(_ROWS, {"run_ids": [run_id]}).first()
    return None if row is None else decode(row)
