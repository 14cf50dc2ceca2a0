"""Chart series group snapshots by UTC day/bucket the same way on both backends."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app import migrate
from app.models import EquitySnapshot, Portfolio
from app.services.admin_queries import daily_pnl, equity_curve

pytestmark = pytest.mark.integration

DAY1 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def add_portfolio(session: Session, when: datetime) -> None:
    session.add(
        Portfolio(
            name="default",
            initial_capital=Decimal(1000),
            cash=Decimal(1000),
            realized_pnl=Decimal(0),
            fees_paid=Decimal(0),
            day=when.date(),
            day_start_equity=Decimal(1000),
            updated_at=when,
        )
    )
    session.flush()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_daily_pnl_is_one_value_per_utc_day(backend, empty_pg_url, tmp_path):
    url = empty_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path}/cdb.sqlite3"
    migrate.upgrade(url)
    engine = create_engine(url)
    with Session(engine) as session:
        add_portfolio(session, DAY1)
        stamps = [
            DAY1,
            DAY1 + timedelta(hours=3),
            DAY1 + timedelta(days=1, minutes=5),
            DAY1 + timedelta(days=1, hours=2),
        ]
        for number, when in enumerate(stamps, 1):
            session.add(
                EquitySnapshot(
                    portfolio_id=1,
                    run_id=None,
                    equity=Decimal(1000 + number),
                    cash=Decimal(1000),
                    exposure=Decimal(number),
                    drawdown_pct=Decimal(0),
                    daily_pnl=Decimal(number),
                    taken_at=when,
                )
            )
        session.commit()
        days = daily_pnl(session, DAY1 - timedelta(days=1))
        assert [(when.date(), pnl) for when, pnl in days] == [
            (DAY1.date(), Decimal(2)),
            ((DAY1 + timedelta(days=1)).date(), Decimal(4)),
        ]
        curve = equity_curve(session, DAY1 - timedelta(hours=1), DAY1 + timedelta(days=2))
        assert [value for _, value in curve] == [
            Decimal(1001),
            Decimal(1002),
            Decimal(1003),
            Decimal(1004),
        ]
    engine.dispose()


def test_a_young_curve_is_not_one_bucket_wide(tmp_path):
    url = f"sqlite:///{tmp_path}/cdb.sqlite3"
    migrate.upgrade(url)
    engine = create_engine(url)
    now = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    with Session(engine) as session:
        add_portfolio(session, now)
        for second in range(0, 120, 15):  # two minutes of a bot started just now
            session.add(
                EquitySnapshot(
                    portfolio_id=1,
                    run_id=None,
                    equity=Decimal(1000 + second),
                    cash=Decimal(1000),
                    exposure=Decimal(0),
                    drawdown_pct=Decimal(0),
                    daily_pnl=Decimal(0),
                    taken_at=now - timedelta(seconds=120 - second),
                )
            )
        session.commit()
        curve = equity_curve(session, now - timedelta(days=7), now)
    engine.dispose()
    assert len(curve) == 8
