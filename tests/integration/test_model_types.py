"""Money stays exact and timestamps stay UTC on both backends."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, delete, insert, select
from sqlalchemy.orm import Session

from app import migrate
from app.extensions import make_engine
from app.models import Market

pytestmark = pytest.mark.integration

EXACT = [Decimal("0.000000012345"), Decimal("98765432109876543210.123456789012345678")]
MARKET_ROW = dict(
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
    base = MARKET_ROW
    with Session(engine) as session:
        session.add(Market(**base, updated_at=datetime(2026, 1, 1)))
        with pytest.raises(Exception, match="naive datetime"):
            session.commit()
    with Session(engine) as session:
        session.add(Market(**{**base, "min_qty": 0.1}, updated_at=datetime.now(UTC)))
        with pytest.raises(Exception, match="expected Decimal"):
            session.commit()
    engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_candle_stored_again_unchanged_is_not_rewritten(backend, empty_pg_url, tmp_path):
    """Every run fetches the look-back's candles again; the closed ones come back the same
    and are left as they are (their row keeps the run that stored it), a changed one (the
    in-progress candle) is updated."""
    from app.models import Kline, MarketDataRun
    from app.services.market_data import KLINE_VALUES
    from app.services.store import upsert

    url = empty_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path}/cdb.sqlite3"
    migrate.upgrade(url)
    engine = create_engine(url)
    opened = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def candle(minute: int, close: str, run_id: int) -> dict:
        start = opened + timedelta(minutes=minute)
        return {
            "symbol": "ETHUSDT",
            "interval": "1m",
            "open_time": start,
            "open": Decimal("100"),
            "high": Decimal("101"),
            "low": Decimal("99"),
            "close": Decimal(close),
            "volume": Decimal("5.5"),
            "close_time": start + timedelta(seconds=59, microseconds=999000),
            "quote_volume": None,
            "run_id": run_id,
        }

    def store(rows: list[dict]) -> dict:
        with Session(engine) as session:
            upsert(
                session, Kline, rows, ["symbol", "interval", "open_time"], unless_same=KLINE_VALUES
            )
            session.commit()
            return {
                k.open_time.minute: (k.close, k.run_id)
                for k in session.scalars(select(Kline).order_by(Kline.open_time))
            }

    with Session(engine) as session:
        for _ in range(2):
            session.add(
                MarketDataRun(
                    run_key=f"r{_}", trigger="test", status="ok", started_at=opened,
                    parameters={}, screened_symbols=[], stored_symbols=[], rejections=[],
                    retries=[],
                )
            )  # fmt: skip
        session.commit()
        first, second = session.scalars(select(MarketDataRun.id).order_by(MarketDataRun.id))
    store([candle(0, "100.5", first), candle(1, "100.7", first)])
    stored = store([candle(0, "100.5", second), candle(1, "100.9", second)])
    assert stored == {0: (Decimal("100.5"), first), 1: (Decimal("100.9"), second)}
    engine.dispose()


def test_postgres_sessions_are_in_utc_whatever_the_servers_zone_and_keep_url_options(
    empty_pg_url,
):
    migrate.upgrade(empty_pg_url)
    name = empty_pg_url.rsplit("/", 1)[1]
    admin = create_engine(empty_pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"ALTER DATABASE \"{name}\" SET TimeZone = 'America/New_York'")
    admin.dispose()
    plain = create_engine(empty_pg_url)
    with plain.connect() as conn:  # a new session: the database's zone applies
        assert conn.exec_driver_sql("SELECT now()").scalar().utcoffset() != timedelta(0)
    plain.dispose()
    stamp = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)  # another day in New York's zone
    with_options = f"{empty_pg_url}?options=-c%20statement_timeout%3D4321"
    for url in (empty_pg_url, with_options):
        engine = make_engine(url)
        with engine.begin() as conn:
            assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "UTC"
            conn.execute(delete(Market))
            conn.execute(insert(Market), [{**MARKET_ROW, "updated_at": stamp}])
            read = conn.execute(select(Market.updated_at)).scalar_one()
            assert read == stamp and read.tzinfo is UTC
            raw = conn.exec_driver_sql("SELECT updated_at::text FROM markets").scalar()
            assert raw == "2026-11-30 23:30:00+00"
            if url == with_options:
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "4321ms"
        engine.dispose()
