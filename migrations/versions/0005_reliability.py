"""reliability: stage marks on runs (the reconciler re-drives stopped chains), server-side
admin sessions, login attempts (throttle and audit)

Runs that existed before this revision count as having gone through every stage.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 02:23:59.492339
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('admin_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_sessions'))
    )
    with op.batch_alter_table('admin_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_sessions_expires_at'), ['expires_at'], unique=False)

    op.create_table('login_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_attempts'))
    )
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_attempts_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_attempts_remote_addr'), ['remote_addr'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_attempts_username'), ['username'], unique=False)

    with op.batch_alter_table('market_data_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('signals_done_at', app.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('risk_done_at', app.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('execution_done_at', app.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('redrives', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('redriven_at', app.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('chain_note', sa.Text(), nullable=True))
    runs = sa.table(
        'market_data_runs',
        sa.column('status', sa.String),
        sa.column('finished_at'),
        sa.column('signals_done_at'),
        sa.column('risk_done_at'),
        sa.column('execution_done_at'),
    )
    op.execute(
        runs.update()
        .where(runs.c.status != 'running')
        .values(
            signals_done_at=runs.c.finished_at,
            risk_done_at=runs.c.finished_at,
            execution_done_at=runs.c.finished_at,
        )
    )



def downgrade() -> None:
    with op.batch_alter_table('market_data_runs', schema=None) as batch_op:
        batch_op.drop_column('chain_note')
        batch_op.drop_column('redriven_at')
        batch_op.drop_column('redrives')
        batch_op.drop_column('execution_done_at')
        batch_op.drop_column('risk_done_at')
        batch_op.drop_column('signals_done_at')

    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_attempts_username'))
        batch_op.drop_index(batch_op.f('ix_login_attempts_remote_addr'))
        batch_op.drop_index(batch_op.f('ix_login_attempts_at'))

    op.drop_table('login_attempts')
    with op.batch_alter_table('admin_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_sessions_expires_at'))

    op.drop_table('admin_sessions')
