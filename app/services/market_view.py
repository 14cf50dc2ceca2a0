"""What risk and execution see of a symbol: the run's stored book and ticker, and its rules."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from statistics import median
from typing import Any

from sqlalchemy import BindParameter, Row, Select, bindparam, func, select
from sqlalchemy.orm import Session

from app.domain.trading import MarketView, SymbolRules
from app.format import Precision
from app.models import BookSnapshot, LatestTicker, Market, MarketDataRun, TickerSnapshot
from app.services.per_symbol import batches, union_per_symbol

SPREAD_HISTORY = 20


def _levels(raw: list) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((Decimal(p), Decimal(q)) for p, q in raw)


# The run's books and tickers of some symbols with their rules (outer-joined: a symbol
# without rules still has a view). Built once: risk runs it for a run's signals, execution
# for a run's orders.
_STORED = (
    select(
        BookSnapshot.symbol,
        BookSnapshot.bids,
        BookSnapshot.asks,
        BookSnapshot.fetched_at,
        TickerSnapshot.last_price,
        TickerSnapshot.close_time,
        Market.symbol.label("rules_symbol"),
        Market.base_asset_precision,
        Market.quote_asset_precision,
        Market.min_qty,
        Market.min_notional,
        Market.taker_commission,
        Market.maker_commission,
    )
    .join(
        TickerSnapshot,
        (TickerSnapshot.run_id == BookSnapshot.run_id)
        & (TickerSnapshot.symbol == BookSnapshot.symbol),
    )
    .outerjoin(Market, Market.symbol == BookSnapshot.symbol)
    .where(
        BookSnapshot.run_id == bindparam("run_id"),
        BookSnapshot.symbol.in_(bindparam("symbols", expanding=True)),
    )
)
# The previous books of up to this many symbols are read in one statement.
_PREVIOUS_BATCH = 8


def _previous_books(symbol: BindParameter[Any]) -> Select[Any]:
    """Best bid and ask of the symbol's SPREAD_HISTORY books before the run."""
    return (
        select(BookSnapshot.symbol, BookSnapshot.best_bid, BookSnapshot.best_ask)
        .where(BookSnapshot.symbol == symbol, BookSnapshot.run_id < bindparam("run_id"))
        .order_by(BookSnapshot.run_id.desc())
        .limit(SPREAD_HISTORY)
    )


Views = dict[str, tuple[MarketView, SymbolRules | None]]


def market_views(
    session: Session, run_id: int, symbols: Iterable[str], *, typical_spread: bool = True
) -> Views:
    """The run's view of each symbol and its rules (None when it has none stored); a symbol
    the run stored no book or ticker for is left out. typical_spread=False: without the
    previous books' median spread (`typical_spread_pct` None), one round trip fewer."""
    wanted = sorted(set(symbols))
    if not wanted:
        return {}
    conn = session.connection()
    stored = conn.execute(_STORED, {"run_id": run_id, "symbols": wanted}).all()
    spreads: dict[str, list[Decimal]] = {row.symbol: [] for row in stored}
    found = sorted(spreads) if typical_spread else []
    for keys in batches(found, _PREVIOUS_BATCH):
        previous = union_per_symbol(_previous_books, len(keys))
        for symbol, bid, ask in conn.execute(previous, {"run_id": run_id, **keys}):
            spreads[symbol].append((ask - bid) / ((ask + bid) / 2))
    return {row.symbol: (_view(row, spreads[row.symbol]), _rules(row)) for row in stored}


def _view(stored: Row[Any], spreads: list[Decimal]) -> MarketView:
    qty_precision = stored.base_asset_precision
    return MarketView(
        symbol=stored.symbol,
        last_price=stored.last_price,
        bids=_levels(stored.bids),
        asks=_levels(stored.asks),
        data_time=min(stored.close_time, stored.fetched_at),
        typical_spread_pct=median(spreads) if len(spreads) >= 3 else None,
        qty_step=None if qty_precision is None else Decimal(1).scaleb(-qty_precision),
    )


def _rules(row: Row[Any]) -> SymbolRules | None:
    if row.rules_symbol is None:
        return None
    return SymbolRules(
        symbol=row.symbol,
        qty_precision=row.base_asset_precision,
        price_precision=row.quote_asset_precision,
        min_qty=row.min_qty or Decimal(0),
        min_notional=row.min_notional or Decimal(0),
        taker_fee=row.taker_commission or Decimal(0),
        maker_fee=row.maker_commission or Decimal(0),
    )


_LATEST_PRICES = select(LatestTicker.symbol, LatestTicker.last_price).where(
    LatestTicker.symbol.in_(bindparam("symbols", expanding=True))
)
_NEWEST_DATA_TIME = (
    select(MarketDataRun.data_time)
    .where(MarketDataRun.data_time.is_not(None))
    .order_by(MarketDataRun.id.desc())
    .limit(1)
)


def latest_prices(session: Session, symbols: list[str]) -> dict[str, Decimal]:
    """The newest stored last price of each symbol: one indexed lookup in latest_tickers,
    however many runs are stored."""
    if not symbols:
        return {}
    return dict(session.connection().execute(_LATEST_PRICES, {"symbols": symbols}).all())


def newest_data_time(session: Session) -> datetime | None:
    """When the newest stored market data was current (the newest run's data time)."""
    return session.connection().scalar(_NEWEST_DATA_TIME)


def precisions(session: Session, symbols: Iterable[str]) -> dict[str, Precision]:
    """How many decimals each symbol's prices and quantities have (Precision() if unknown)."""
    wanted = sorted(set(symbols))
    if not wanted:
        return {}
    rows = session.execute(
        select(Market.symbol, Market.quote_asset_precision, Market.base_asset_precision).where(
            Market.symbol.in_(wanted)
        )
    )
    known = {symbol: Precision(price, qty) for symbol, price, qty in rows}
    return {symbol: known.get(symbol, Precision()) for symbol in wanted}


def rebuild_latest(session: Session) -> None:
    """latest_tickers and each run's data time, from ticker_snapshots (for data written
    around the market-data stage, e.g. a restore or a test's own rows)."""
    newest = (
        select(TickerSnapshot.symbol, func.max(TickerSnapshot.run_id).label("run_id"))
        .group_by(TickerSnapshot.symbol)
        .subquery()
    )
    rows = session.execute(
        select(
            TickerSnapshot.symbol,
            TickerSnapshot.run_id,
            TickerSnapshot.last_price,
            TickerSnapshot.bid_price,
            TickerSnapshot.ask_price,
            TickerSnapshot.close_time,
        ).join(
            newest,
            (TickerSnapshot.symbol == newest.c.symbol) & (TickerSnapshot.run_id == newest.c.run_id),
        )
    ).mappings()
    session.execute(LatestTicker.__table__.delete())
    latest = [dict(row) for row in rows]
    if latest:
        session.execute(LatestTicker.__table__.insert(), latest)
    data_times = dict(
        session.execute(
            select(TickerSnapshot.run_id, func.max(TickerSnapshot.close_time)).group_by(
                TickerSnapshot.run_id
            )
        ).all()
    )
    for run in session.scalars(select(MarketDataRun).where(MarketDataRun.id.in_(data_times))):
        run.data_time = data_times[run.id]
