"""Money stays exact and timestamps stay UTC on both backends."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app import migrate
from app.models import Market

pytestmark = pytest.mark.integration

EXACT = [Decimal("0.000000012345"), Decimal("98765432109876543210.123456789012345678")]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_decimals_and_times_round_trip_exactly(backend, empty_pg_url, tmp_path):
    url = empty_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path}/cdb.sqlite3"
    migrate.upgrade(url)
    engine = create_engine(url)
    berlin = timezone(timedelta(hours=1))
    stamp = datetime(2026, 11, 21, 9, 30, 15, 123000, tzinfo=berlin)
    with Session(engine) as session:
        session.add(
            Market(
                symbol="PEPEUSDT",
                base_asset="PEPE",
                quote_asset="USDT",
                status="1",
                is_spot_trading_allowed=True,
                base_asset_precision=2,
                quote_asset_precision=12,
                min_notional=EXACT[0],
                min_qty=EXACT[1],
                maker_commission=Decimal("0"),
                taker_commission=Decimal("0.0005"),
                max_quote_amount=None,
                full_name=None,
                updated_at=stamp,
            )
        )
        session.commit()
    with Session(engine) as session:
        market = session.scalars(select(Market)).one()
        assert (market.min_notional, market.min_qty) == tuple(EXACT)
        assert str(market.min_notional) == "1.2345E-8"
        assert market.updated_at == stamp
        assert market.updated_at.tzinfo is not None
        assert market.updated_at.utcoffset() == timedelta(0)
        assert market.updated_at.hour == 8
    engine.dispose()


def test_naive_datetimes_and_floats_are_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/cdb.sqlite3"
    migrate.upgrade(url)
    engine = create_engine(url)
    base = dict(
        symbol="X",
        base_asset="X",
        quote_asset="USDT",
        status="1",
        is_spot_trading_allowed=True,
        base_asset_precision=2,
        quote_asset_precision=2,
        min_notional=None,
        min_qty=None,
        maker_commission=None,
        taker_commission=None,
        max_quote_amount=None,
        full_name=None,
    )
    with Session(engine) as session:
        session.add(Market(**base, updated_at=datetime(2026, 1, 1)))
        with pytest.raises(Exception, match="naive datetime"):
            session.commit()
    with Session(engine) as session:
        session.add(Market(**{**base, "min_qty": 0.1}, updated_at=datetime.now(UTC)))
        with pytest.raises(Exception, match="expected Decimal"):
            session.commit()
    engine.dispose()
