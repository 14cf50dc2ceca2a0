"""Chart series group snapshots by UTC day/bucket the same way on both backends, and follow
the chosen paper account."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app import migrate
from app.models import (
    EquitySnapshot,
    FillRecord,
    MarketDataRun,
    Order,
    Portfolio,
    RiskDecisionRecord,
    SignalRecord,
)
from app.services.admin_queries import (
    accounts,
    daily_pnl,
    drawdown_curve,
    equity_curve,
    fills_page,
    orders_page,
)

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


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_chart_series_and_lists_follow_the_chosen_account(backend, empty_pg_url, tmp_path):
    """The active account by default, any other by its id: a reset keeps the old history."""
    url = empty_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path}/cdb.sqlite3"
    migrate.upgrade(url)
    engine = create_engine(url)
    with Session(engine) as session:
        add_portfolio(session, DAY1)  # id 1, closed below
        session.add(
            Portfolio(
                name="paper-2",
                initial_capital=Decimal(500),
                cash=Decimal(500),
                realized_pnl=Decimal(0),
                fees_paid=Decimal(0),
                day=DAY1.date(),
                day_start_equity=Decimal(500),
                updated_at=DAY1,
                active=False,
            )
        )
        session.flush()
        old, new = session.get(Portfolio, 1), session.get(Portfolio, 2)
        old.active, old.closed_at = False, DAY1
        session.flush()
        new.active = True
        run = MarketDataRun(
            run_key="r1",
            trigger="beat",
            status="ok",
            started_at=DAY1,
            parameters={},
            screened_symbols=[],
            stored_symbols=[],
            rejections=[],
            retries=[],
        )
        session.add(run)
        session.flush()
        for account, drawdown in ((old, "0.012"), (new, "0.001")):
            session.add(
                EquitySnapshot(
                    portfolio_id=account.id,
                    run_id=None,
                    equity=account.cash,
                    cash=account.cash,
                    exposure=Decimal(0),
                    drawdown_pct=Decimal(drawdown),
                    daily_pnl=Decimal(0),
                    taken_at=DAY1,
                )
            )
        signal = SignalRecord(
            run_id=run.id,
            symbol="BTCUSDT",
            strategy="momentum",
            direction="BUY",
            size=Decimal("0.01"),
            signal_strength=Decimal("0.5"),
            price=Decimal(5000),
            is_exit=False,
            reason="test",
            timestamp=DAY1,
        )
        session.add(signal)
        session.flush()
        decision = RiskDecisionRecord(
            signal_id=signal.id, approved=True, size=Decimal("0.01"), verdicts=[], decided_at=DAY1
        )
        session.add(decision)
        session.flush()
        order = Order(
            client_order_id="cdb-1",
            portfolio_id=old.id,
            run_id=run.id,
            signal_id=signal.id,
            decision_id=decision.id,
            symbol="BTCUSDT",
            side="BUY",
            size=Decimal("0.01"),
            est_price=Decimal(5000),
            status="filled",
            approved_by=[],
            risk_checks=[],
            created_at=DAY1,
            updated_at=DAY1,
        )
        session.add(order)
        session.flush()
        session.add(
            FillRecord(
                order_id=order.id,
                symbol="BTCUSDT",
                side="BUY",
                qty=Decimal("0.01"),
                price=Decimal(5000),
                notional=Decimal(50),
                fee=Decimal("0.05"),
                slippage_pct=Decimal(0),
                realized_pnl=Decimal(0),
                filled_at=DAY1,
            )
        )
        session.commit()

        later = DAY1 + timedelta(hours=1)
        assert [value for _, value in drawdown_curve(session, DAY1, later)] == [Decimal("0.001")]
        assert [v for _, v in drawdown_curve(session, DAY1, later, account_id=1)] == [
            Decimal("0.012")
        ]
        assert [v for _, v in equity_curve(session, DAY1, later, account_id=1)] == [Decimal(1000)]
        assert [v for _, v in daily_pnl(session, DAY1, account_id=2)] == [Decimal(0)]
        assert orders_page(session, 1).items == []
        assert [o.id for o, _ in orders_page(session, 1, account_id=1).items] == [order.id]
        assert fills_page(session, 1).items == []
        [(fill, its_order)] = fills_page(session, 1, account_id=1).items
        assert (fill.order_id, its_order.size) == (order.id, Decimal("0.01"))
        assert [a.name for a in accounts(session)] == ["paper-2", "default"]
    engine.dispose()
