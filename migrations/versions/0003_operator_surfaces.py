"""operator surfaces

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 08:50:33.763409
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of app.services.metrics.STAGE_OF_TASK and LATENCY_BUCKETS_MS as of this
# revision, so the backfill below means the same whatever the code says later.
STAGE_OF_TASK = {
    'cdb.market_data.run': 'market_data',
    'cdb.signals.run': 'signals',
    'cdb.risk.run': 'risk',
    'cdb.execution.run': 'execution',
}
LATENCY_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 180000)


def upgrade() -> None:
    op.create_table('operator_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('target', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.JSON(), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_actions'))
    )
    op.create_index(op.f('ix_operator_actions_created_at'), 'operator_actions', ['created_at'], unique=False)
    op.create_index(op.f('ix_operator_actions_target'), 'operator_actions', ['target'], unique=False)
    op.create_table('stage_latency_buckets',
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('le_ms', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('stage', 'le_ms', name=op.f('pk_stage_latency_buckets'))
    )
    op.create_table('stage_latency_totals',
    sa.Column('stage', sa.String(length=32), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('sum_ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('stage', name=op.f('pk_stage_latency_totals'))
    )
    _backfill_stage_latency()


def _backfill_stage_latency() -> None:
    """Start the latency aggregate from the task runs already recorded."""
    runs = sa.table('task_runs', sa.column('name', sa.String), sa.column('runtime_ms', sa.Integer))
    stage = sa.case(STAGE_OF_TASK, value=runs.c.name)
    finished = sa.and_(runs.c.runtime_ms.is_not(None), runs.c.name.in_(list(STAGE_OF_TASK)))
    totals = sa.table(
        'stage_latency_totals', sa.column('stage'), sa.column('count'), sa.column('sum_ms')
    )
    op.execute(
        totals.insert().from_select(
            ['stage', 'count', 'sum_ms'],
            sa.select(stage, sa.func.count(), sa.func.sum(runs.c.runtime_ms))
            .where(finished)
            .group_by(runs.c.name),
        )
    )
    buckets = sa.table(
        'stage_latency_buckets', sa.column('stage'), sa.column('le_ms'), sa.column('count')
    )
    for le_ms in LATENCY_BUCKETS_MS:
        op.execute(
            buckets.insert().from_select(
                ['stage', 'le_ms', 'count'],
                sa.select(stage, sa.literal(le_ms, sa.Integer), sa.func.count())
                .where(finished, runs.c.runtime_ms <= le_ms)
                .group_by(runs.c.name),
            )
        )


def downgrade() -> None:
    op.drop_table('stage_latency_totals')
    op.drop_table('stage_latency_buckets')
    op.drop_index(op.f('ix_operator_actions_target'), table_name='operator_actions')
    op.drop_index(op.f('ix_operator_actions_created_at'), table_name='operator_actions')
    op.drop_table('operator_actions')
