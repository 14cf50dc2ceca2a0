"""The active account, locked and loaded for risk and execution, on both backends: its open
positions and each held symbol's newest stored price come from one read made after the lock
is taken, so a price written while the task waited for the lock is the one it sees."""

import threading
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.orm import Session

from app.config import load_settings
from app.models import LatestTicker, Portfolio, PositionRecord
from app.services.portfolio import lock_portfolio

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PRICED, UNPRICED, UNHELD = "AUSDT", "BUSDT", "CUSDT"


def _seed(engine) -> None:
    with engine.begin() as conn:
        account = conn.execute(
            insert(Portfolio.__table__).returning(Portfolio.__table__.c.id),
            {
                "name": "paper-1",
                "active": True,
                "opened_at": NOW,
                "initial_capital": D("1000"),
                "cash": D("800"),
                "realized_pnl": D("0"),
                "fees_paid": D("0"),
                "day": NOW.date(),
                "day_start_equity": D("1000"),
                "updated_at": NOW,
            },
        ).scalar_one()
        conn.execute(
            insert(PositionRecord.__table__),
            [
                {
                    "portfolio_id": account,
                    "symbol": symbol,
                    "qty": D("2"),
                    "avg_entry": D("50"),
                    "last_price": D("50"),
                    "opened_at": NOW,
                    "updated_at": NOW,
                }
                for symbol in (PRICED, UNPRICED)
            ],
        )
        conn.execute(
            insert(LatestTicker.__table__),
            [
                {"symbol": symbol, "run_id": 1, "last_price": price, "close_time": NOW}
                for symbol, price in ((PRICED, D("51.25")), (UNHELD, D("7")))
            ],
        )


def _lock(engine, settings):
    with Session(engine) as session, session.begin():
        return lock_portfolio(session, settings, NOW)


def test_held_symbols_come_with_their_newest_price(backend_url):
    engine = create_engine(backend_url)
    settings = load_settings(env_file=None, database_url=backend_url)
    try:
        _seed(engine)
        locked = _lock(engine, settings)
        assert set(locked.state.positions) == {PRICED, UNPRICED}
        # the held symbol without a stored price is left out, the unheld one is not read
        assert locked.latest == {PRICED: D("51.25")}
        assert set(locked.records) == {PRICED, UNPRICED}
    finally:
        engine.dispose()


def test_a_price_written_while_waiting_for_the_lock_is_seen(empty_pg_url):
    from app import migrate

    migrate.upgrade(empty_pg_url)
    engine = create_engine(empty_pg_url)
    settings = load_settings(env_file=None, database_url=empty_pg_url)
    try:
        _seed(engine)
        seen = {}
        with engine.connect() as holder:
            holder.execute(text("SELECT id FROM portfolios WHERE active FOR UPDATE"))
            waiter = threading.Thread(target=lambda: seen.update(_lock(engine, settings).latest))
            waiter.start()
            waiter.join(0.5)
            assert waiter.is_alive(), "the second task must wait for the account's lock"
            holder.execute(
                text("UPDATE latest_tickers SET last_price = 52.5 WHERE symbol = :s"),
                {"s": PRICED},
            )
            holder.commit()
            waiter.join(10)
        assert not waiter.is_alive()
        assert seen == {PRICED: D("52.5")}
    finally:
        engine.dispose()
