"""signals and evaluations drop their run_id index

Both tables have a unique (run_id, symbol) index, and every read or delete by run_id uses its
leading column; the separate run_id index only cost a second index entry per row written
(about ten per run, a hundred at TOP_N=100) and its share of the database.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 04:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('signals', 'evaluations')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f'ix_{table}_run_id')


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.create_index(f'ix_{table}_run_id', ['run_id'], unique=False)
