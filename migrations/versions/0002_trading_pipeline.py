"""trading pipeline

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 08:18:44.713693
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('portfolios',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('initial_capital', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('cash', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('realized_pnl', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('fees_paid', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('day_start_equity', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('halted', sa.Boolean(), nullable=False),
    sa.Column('halt_reason', sa.Text(), nullable=True),
    sa.Column('halted_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('breaker_paused_until', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('breaker_trips', sa.Integer(), nullable=False),
    sa.Column('stale_paused', sa.Boolean(), nullable=False),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portfolios')),
    sa.UniqueConstraint('name', name=op.f('uq_portfolios_name'))
    )
    op.create_table('task_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('queue', sa.String(length=32), nullable=True),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.Column('kwargs', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('started_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('runtime_ms', sa.Integer(), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('traceback', sa.Text(), nullable=True),
    sa.Column('parent_task_id', sa.String(length=64), nullable=True),
    sa.Column('root_task_id', sa.String(length=64), nullable=True),
    sa.Column('rerun_of', sa.String(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_runs')),
    sa.UniqueConstraint('task_id', name=op.f('uq_task_runs_task_id'))
    )
    op.create_index(op.f('ix_task_runs_name'), 'task_runs', ['name'], unique=False)
    op.create_index(op.f('ix_task_runs_started_at'), 'task_runs', ['started_at'], unique=False)
    op.create_index(op.f('ix_task_runs_state'), 'task_runs', ['state'], unique=False)
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', app.models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['market_data_runs.id'], name=op.f('fk_alerts_run_id_market_data_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    op.create_index(op.f('ix_alerts_code'), 'alerts', ['code'], unique=False)
    op.create_index(op.f('ix_alerts_created_at'), 'alerts', ['created_at'], unique=False)
    op.create_table('equity_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portfolio_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('equity', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('cash', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('exposure', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('drawdown_pct', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('daily_pnl', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('taken_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['portfolio_id'], ['portfolios.id'], name=op.f('fk_equity_snapshots_portfolio_id_portfolios')),
    sa.ForeignKeyConstraint(['run_id'], ['market_data_runs.id'], name=op.f('fk_equity_snapshots_run_id_market_data_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_equity_snapshots')),
    sa.UniqueConstraint('portfolio_id', 'run_id', name=op.f('uq_equity_snapshots_portfolio_id_run_id'))
    )
    op.create_index(op.f('ix_equity_snapshots_taken_at'), 'equity_snapshots', ['taken_at'], unique=False)
    op.create_table('positions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('portfolio_id', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('qty', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('avg_entry', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('last_price', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('stop_price', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('opened_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['portfolio_id'], ['portfolios.id'], name=op.f('fk_positions_portfolio_id_portfolios')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_positions')),
    sa.UniqueConstraint('portfolio_id', 'symbol', name=op.f('uq_positions_portfolio_id_symbol'))
    )
    op.create_table('signals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('strategy', sa.String(length=32), nullable=False),
    sa.Column('direction', sa.String(length=4), nullable=False),
    sa.Column('size', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('signal_strength', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('price', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('is_exit', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('timestamp', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['market_data_runs.id'], name=op.f('fk_signals_run_id_market_data_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signals')),
    sa.UniqueConstraint('run_id', 'symbol', name=op.f('uq_signals_run_id_symbol'))
    )
    op.create_index(op.f('ix_signals_run_id'), 'signals', ['run_id'], unique=False)
    op.create_table('risk_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('signal_id', sa.Integer(), nullable=False),
    sa.Column('approved', sa.Boolean(), nullable=False),
    sa.Column('size', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('rejected_by', sa.String(length=32), nullable=True),
    sa.Column('stop_price', app.models.base.ExactDecimal(), nullable=True),
    sa.Column('verdicts', sa.JSON(), nullable=False),
    sa.Column('decided_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['signal_id'], ['signals.id'], name=op.f('fk_risk_decisions_signal_id_signals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_decisions')),
    sa.UniqueConstraint('signal_id', name=op.f('uq_risk_decisions_signal_id'))
    )
    op.create_index(op.f('ix_risk_decisions_rejected_by'), 'risk_decisions', ['rejected_by'], unique=False)
    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_order_id', sa.String(length=64), nullable=False),
    sa.Column('portfolio_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('signal_id', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('size', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('est_price', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reject_reason', sa.Text(), nullable=True),
    sa.Column('approved_by', sa.JSON(), nullable=False),
    sa.Column('risk_checks', sa.JSON(), nullable=False),
    sa.Column('created_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['decision_id'], ['risk_decisions.id'], name=op.f('fk_orders_decision_id_risk_decisions')),
    sa.ForeignKeyConstraint(['portfolio_id'], ['portfolios.id'], name=op.f('fk_orders_portfolio_id_portfolios')),
    sa.ForeignKeyConstraint(['run_id'], ['market_data_runs.id'], name=op.f('fk_orders_run_id_market_data_runs')),
    sa.ForeignKeyConstraint(['signal_id'], ['signals.id'], name=op.f('fk_orders_signal_id_signals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('client_order_id', name=op.f('uq_orders_client_order_id')),
    sa.UniqueConstraint('decision_id', name=op.f('uq_orders_decision_id')),
    sa.UniqueConstraint('signal_id', name=op.f('uq_orders_signal_id'))
    )
    op.create_index(op.f('ix_orders_run_id'), 'orders', ['run_id'], unique=False)
    op.create_index(op.f('ix_orders_status'), 'orders', ['status'], unique=False)
    op.create_table('fills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=4), nullable=False),
    sa.Column('qty', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('price', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('notional', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('fee', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('slippage_pct', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('realized_pnl', app.models.base.ExactDecimal(), nullable=False),
    sa.Column('filled_at', app.models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_fills_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fills')),
    sa.UniqueConstraint('order_id', name=op.f('uq_fills_order_id'))
    )
    op.create_index(op.f('ix_fills_filled_at'), 'fills', ['filled_at'], unique=False)
    op.create_index(op.f('ix_fills_symbol'), 'fills', ['symbol'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_fills_symbol'), table_name='fills')
    op.drop_index(op.f('ix_fills_filled_at'), table_name='fills')
    op.drop_table('fills')
    op.drop_index(op.f('ix_orders_status'), table_name='orders')
    op.drop_index(op.f('ix_orders_run_id'), table_name='orders')
    op.drop_table('orders')
    op.drop_index(op.f('ix_risk_decisions_rejected_by'), table_name='risk_decisions')
    op.drop_table('risk_decisions')
    op.drop_index(op.f('ix_signals_run_id'), table_name='signals')
    op.drop_table('signals')
    op.drop_table('positions')
    op.drop_index(op.f('ix_equity_snapshots_taken_at'), table_name='equity_snapshots')
    op.drop_table('equity_snapshots')
    op.drop_index(op.f('ix_alerts_created_at'), table_name='alerts')
    op.drop_index(op.f('ix_alerts_code'), table_name='alerts')
    op.drop_table('alerts')
    op.drop_index(op.f('ix_task_runs_state'), table_name='task_runs')
    op.drop_index(op.f('ix_task_runs_started_at'), table_name='task_runs')
    op.drop_index(op.f('ix_task_runs_name'), table_name='task_runs')
    op.drop_table('task_runs')
    op.drop_table('portfolios')
