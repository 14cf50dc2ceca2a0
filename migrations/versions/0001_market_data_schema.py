"""market data schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 08:04:07.608330
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('market_data_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_key', sa.String(length=64), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('tickers_received', sa.Integer(), nullable=False),
    sa.Column('universe_size', sa.Integer(), nullable=False),
    sa.Column('screened_symbols', sa.JSON(), nullable=False),
    sa.Column('stored_symbols', sa.JSON(), nullable=False),
    sa.Column('rejections', sa.JSON(), nullable=False),
    sa.Column('retries', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_data_runs')),
    sa.UniqueConstraint('run_key', name=op.f('uq_market_data_runs_run_key'))
    )
    op.create_index(op.f('ix_market_data_runs_started_at'), 'market_data_runs', ['started_at'], unique=False)
    op.create_index(op.f('ix_market_data_runs_status'), 'market_data_runs', ['status'], unique=False)
    op.create_table('markets',
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('base_asset', sa.String(length=16), nullable=False),
    sa.Column('quote_asset', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('is_spot_trading_allowed', sa.Boolean(), nullable=False),
    sa.Column('base_asset_precision', sa.Integer(), nullable=False),
    sa.Column('quote_asset_precision', sa.Integer(), nullable=False),
    sa.Column('min_notional', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('min_qty', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('maker_commission', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('taker_commission', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('max_quote_amount', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('full_name', sa.String(length=128), nullable=True),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('symbol', name=op.f('pk_markets'))
    )
    op.create_index(op.f('ix_markets_quote_asset'), 'markets', ['quote_asset'], unique=False)
    op.create_table('book_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('last_update_id', sa.BigInteger(), nullable=True),
    sa.Column('best_bid', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('best_ask', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('bids', sa.JSON(), nullable=False),
    sa.Column('asks', sa.JSON(), nullable=False),
    sa.Column('fetched_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['market_data_runs.id'], name=op.f('fk_book_snapshots_run_id_market_data_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_book_snapshots')),
    sa.UniqueConstraint('run_id', 'symbol', name=op.f('uq_book_snapshots_run_id_symbol'))
    )
    op.create_index(op.f('ix_book_snapshots_symbol'), 'book_snapshots', ['symbol'], unique=False)
    op.create_table('klines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('interval', sa.String(length=4), nullable=False),
    sa.Column('open_time', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('open', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('high', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('low', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('close', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('volume', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('close_time', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('quote_volume', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['market_data_runs.id'], name=op.f('fk_klines_run_id_market_data_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_klines')),
    sa.UniqueConstraint('symbol', 'interval', 'open_time', name=op.f('uq_klines_symbol_interval_open_time'))
    )
    op.create_table('ticker_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('last_price', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('price_change_pct', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('open_price', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('high_price', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('low_price', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('bid_price', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('bid_qty', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('ask_price', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('ask_qty', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('volume', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('quote_volume', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('open_time', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('close_time', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('screened', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['market_data_runs.id'], name=op.f('fk_ticker_snapshots_run_id_market_data_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticker_snapshots')),
    sa.UniqueConstraint('run_id', 'symbol', name=op.f('uq_ticker_snapshots_run_id_symbol'))
    )
    op.create_index(op.f('ix_ticker_snapshots_symbol'), 'ticker_snapshots', ['symbol'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ticker_snapshots_symbol'), table_name='ticker_snapshots')
    op.drop_table('ticker_snapshots')
    op.drop_table('klines')
    op.drop_index(op.f('ix_book_snapshots_symbol'), table_name='book_snapshots')
    op.drop_table('book_snapshots')
    op.drop_index(op.f('ix_markets_quote_asset'), table_name='markets')
    op.drop_table('markets')
    op.drop_index(op.f('ix_market_data_runs_status'), table_name='market_data_runs')
    op.drop_index(op.f('ix_market_data_runs_started_at'), table_name='market_data_runs')
    op.drop_table('market_data_runs')
