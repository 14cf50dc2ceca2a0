"""performance: O(1) hot lookups and a compact universe history

latest_tickers: the newest ticker per symbol (was a scan of ticker_snapshots per lookup).
universe_snapshots: every eligible pair's price per run, compressed into one row.
counters: running totals for /metrics (was GROUP BYs over whole tables per scrape).
market_data_runs.data_time, .evaluation_counts; an index on klines.open_time for retention.
All three new structures are backfilled from what is stored.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 02:54:21.519393
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('counters',
    sa.Column('family', sa.String(length=32), nullable=False),
    sa.Column('labels', sa.String(length=128), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('family', 'labels', name=op.f('pk_counters'))
    )
    op.create_table('latest_tickers',
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('last_price', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('bid_price', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('ask_price', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('close_time', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('symbol', name=op.f('pk_latest_tickers'))
    )
    op.create_table('universe_snapshots',
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('taken_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('symbols', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['market_data_runs.id'], name=op.f('fk_universe_snapshots_run_id_market_data_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', name=op.f('pk_universe_snapshots'))
    )
    with op.batch_alter_table('universe_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_universe_snapshots_taken_at'), ['taken_at'], unique=False)

    with op.batch_alter_table('klines', schema=None) as batch_op:
        batch_op.create_index('ix_klines_open_time', ['open_time'], unique=False)

    with op.batch_alter_table('market_data_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('data_time', app.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('evaluation_counts', sa.JSON(), nullable=True))
    _backfill()


BACKFILL = (
    '''INSERT INTO latest_tickers (symbol, run_id, last_price, bid_price, ask_price, close_time)
       SELECT t.symbol, t.run_id, t.last_price, t.bid_price, t.ask_price, t.close_time
       FROM ticker_snapshots t
       JOIN (SELECT symbol, max(run_id) AS run_id FROM ticker_snapshots GROUP BY symbol) n
         ON n.symbol = t.symbol AND n.run_id = t.run_id''',
    '''UPDATE market_data_runs SET data_time =
       (SELECT max(t.close_time) FROM ticker_snapshots t WHERE t.run_id = market_data_runs.id)''',
    '''INSERT INTO counters (family, labels, value)
       SELECT 'orders', 'side=' || side || ',status=' || status, count(*) FROM orders
       GROUP BY side, status''',
    '''INSERT INTO counters (family, labels, value)
       SELECT 'fills', 'side=' || side, count(*) FROM fills GROUP BY side''',
    '''INSERT INTO counters (family, labels, value)
       SELECT 'risk_rejections', 'layer=' || rejected_by, count(*) FROM risk_decisions
       WHERE rejected_by IS NOT NULL GROUP BY rejected_by''',
    '''INSERT INTO counters (family, labels, value)
       SELECT 'alerts', 'code=' || code || ',level=' || level, count(*) FROM alerts
       GROUP BY code, level''',
    '''INSERT INTO counters (family, labels, value)
       SELECT 'market_data_runs', 'status=' || status, count(*) FROM market_data_runs
       GROUP BY status''',
)


def _backfill() -> None:
    for statement in BACKFILL:
        op.execute(sa.text(statement))



def downgrade() -> None:
    with op.batch_alter_table('market_data_runs', schema=None) as batch_op:
        batch_op.drop_column('evaluation_counts')
        batch_op.drop_column('data_time')

    with op.batch_alter_table('klines', schema=None) as batch_op:
        batch_op.drop_index('ix_klines_open_time')

    with op.batch_alter_table('universe_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_universe_snapshots_taken_at'))

    op.drop_table('universe_snapshots')
    op.drop_table('latest_tickers')
    op.drop_table('counters')
