"""first contact: strategy evaluations, paper accounts, one audit trail

evaluations: the strategy's verdict on every (run, symbol), signal or not.
portfolios: paper accounts; exactly one active (partial unique index); the old single
"default" portfolio becomes the active account "paper-1".
operator_actions: source ("panel" or "cli").

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 02:01:02.351918
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('strategy', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=24), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('values', sa.JSON(), nullable=False),
    sa.Column('evaluated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['market_data_runs.id'], name=op.f('fk_evaluations_run_id_market_data_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluations')),
    sa.UniqueConstraint('run_id', 'symbol', name=op.f('uq_evaluations_run_id_symbol'))
    )
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluations_outcome'), ['outcome'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluations_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluations_symbol'), ['symbol'], unique=False)

    with op.batch_alter_table('operator_actions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=8), server_default='panel', nullable=False))

    with op.batch_alter_table('portfolios', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('opened_at', app.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_at', app.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('closed_reason', sa.Text(), nullable=True))
        batch_op.create_index('uq_portfolios_one_active', ['active'], unique=True, postgresql_where=sa.text('active'), sqlite_where=sa.text('active'))
    portfolios = sa.table('portfolios', sa.column('name', sa.String), sa.column('opened_at'), sa.column('updated_at'))
    op.execute(portfolios.update().where(portfolios.c.name == 'default').values(name='paper-1'))
    op.execute(portfolios.update().values(opened_at=portfolios.c.updated_at))



def downgrade() -> None:
    portfolios = sa.table('portfolios', sa.column('name', sa.String), sa.column('active', sa.Boolean))
    if op.get_bind().execute(sa.select(sa.func.count()).select_from(portfolios)).scalar() > 1:
        raise RuntimeError('cannot downgrade below 0004 with more than one paper account')
    op.execute(portfolios.update().values(name='default'))
    with op.batch_alter_table('portfolios', schema=None) as batch_op:
        batch_op.drop_index('uq_portfolios_one_active', postgresql_where=sa.text('active'), sqlite_where=sa.text('active'))
        batch_op.drop_column('closed_reason')
        batch_op.drop_column('closed_at')
        batch_op.drop_column('opened_at')
        batch_op.drop_column('active')

    with op.batch_alter_table('operator_actions', schema=None) as batch_op:
        batch_op.drop_column('source')

    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluations_symbol'))
        batch_op.drop_index(batch_op.f('ix_evaluations_run_id'))
        batch_op.drop_index(batch_op.f('ix_evaluations_outcome'))

    op.drop_table('evaluations')
