"""What risk and execution see of a run's symbols, read for many symbols at once, on both
backends: each symbol's own book, ticker and rules, and the median spread of its own 20
previous books (not the previous 20 runs', not another symbol's)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from statistics import median

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app import migrate
from app.models import BookSnapshot, Market, MarketDataRun, TickerSnapshot
from app.services.market_view import SPREAD_HISTORY, market_views

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
RUNS = 30
EVERY_RUN = [f"S{i:02d}USDT" for i in range(11)]  # more than one batch of previous books
GAPPY = "GAPUSDT"  # in every third run only: its books reach back past the last 20 runs
NEW = "NEWUSDT"  # first stored in the last run: no history
YOUNG = "YOUNGUSDT"  # two previous books: too few for a typical spread
NO_RULES = "NORULESUSDT"


def _spread(run: int, k: int) -> D:
    return D(run * 7 % 13 + k) / 100  # varies by run and symbol, not sorted by time


def _stored(run: int) -> list[tuple[str, int]]:
    symbols = [(s, k) for k, s in enumerate(EVERY_RUN)] + [(NO_RULES, 20)]
    if run % 3 == 0:
        symbols.append((GAPPY, 30))
    if run == RUNS:
        symbols.append((NEW, 40))
    if run >= RUNS - 2:
        symbols.append((YOUNG, 50))
    return symbols


def _market(symbol: str) -> Market:
    return Market(
        symbol=symbol,
        base_asset=symbol.removesuffix("USDT"),
        quote_asset="USDT",
        status="1",
        is_spot_trading_allowed=True,
        base_asset_precision=4,
        quote_asset_precision=2,
        min_notional=D("5"),
        min_qty=None,
        maker_commission=D("0"),
        taker_commission=D("0.0005"),
        max_quote_amount=None,
        full_name=None,
        updated_at=T0,
    )


def _fill(session: Session) -> dict[int, int]:
    ids = {}
    for run in range(1, RUNS + 1):
        at = T0 + timedelta(seconds=15 * run)
        row = MarketDataRun(
            run_key=f"run-{run}",
            trigger="beat",
            status="ok",
            started_at=at,
            parameters={},
            screened_symbols=[],
            stored_symbols=[],
            rejections=[],
            retries=[],
        )
        session.add(row)
        session.flush()
        ids[run] = row.id
        for symbol, k in _stored(run):
            bid = D(100 + k)
            ask = bid + _spread(run, k)
            session.add(
                BookSnapshot(
                    run_id=row.id,
                    symbol=symbol,
                    best_bid=bid,
                    best_ask=ask,
                    bids=[[str(bid), "2"]],
                    asks=[[str(ask), "3"]],
                    fetched_at=at,
                )
            )
            session.add(
                TickerSnapshot(
                    run_id=row.id, symbol=symbol, last_price=bid, close_time=at - timedelta(1)
                )
            )
    for symbol in [*EVERY_RUN, GAPPY, NEW, YOUNG]:
        session.add(_market(symbol))
    session.commit()
    return ids


def _expected_spread(symbol: str) -> D | None:
    k = dict(_stored(RUNS))[symbol]
    books = [run for run in range(RUNS - 1, 0, -1) if symbol in dict(_stored(run))]
    spreads = []
    for run in books[:SPREAD_HISTORY]:
        bid = D(100 + k)
        ask = bid + _spread(run, k)
        spreads.append((ask - bid) / ((ask + bid) / 2))
    return median(spreads) if len(spreads) >= 3 else None


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_each_symbol_gets_its_own_book_rules_and_typical_spread(backend, empty_pg_url, tmp_path):
    url = empty_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path}/cdb.sqlite3"
    migrate.upgrade(url)
    engine = create_engine(url)
    with Session(engine) as session:
        ids = _fill(session)
    wanted = [*EVERY_RUN, GAPPY, NEW, YOUNG, NO_RULES, "ABSENTUSDT", EVERY_RUN[0]]
    with Session(engine) as session:
        views = market_views(session, ids[RUNS], reversed(wanted))
        assert sorted(views) == sorted({*wanted} - {"ABSENTUSDT"})
        at = T0 + timedelta(seconds=15 * RUNS)
        for symbol, (view, rules) in views.items():
            k = dict(_stored(RUNS))[symbol]
            assert view.symbol == symbol
            assert view.bids == ((D(100 + k), D(2)),)
            assert view.asks == ((D(100 + k) + _spread(RUNS, k), D(3)),)
            assert view.last_price == D(100 + k)
            assert view.data_time == at - timedelta(1)
            assert view.typical_spread_pct == _expected_spread(symbol), symbol
            if symbol == NO_RULES:
                assert rules is None and view.qty_step is None
            else:
                assert rules is not None and rules.symbol == symbol
                assert (rules.min_notional, rules.taker_fee) == (D("5"), D("0.0005"))
                assert view.qty_step == D("0.0001")
        assert views[NEW][0].typical_spread_pct is None
        assert views[YOUNG][0].typical_spread_pct is None
        assert views[GAPPY][0].typical_spread_pct is not None
        # the first run has no previous books at all
        assert all(
            v.typical_spread_pct is None
            for v, _ in market_views(session, ids[1], EVERY_RUN).values()
        )
        assert market_views(session, ids[RUNS], []) == {}
        # without the typical spread: the same views otherwise
        plain = market_views(session, ids[RUNS], wanted, typical_spread=False)
        assert sorted(plain) == sorted(views)
        for symbol, (view, rules) in plain.items():
            assert view.typical_spread_pct is None
            assert view == replace(views[symbol][0], typical_spread_pct=None)
            assert rules == views[symbol][1]
    engine.dispose()
