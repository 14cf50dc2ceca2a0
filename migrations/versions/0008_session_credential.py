"""admin sessions remember the password they were made with

admin_sessions.credential: an HMAC-SHA256 of the ADMIN_PASSWORD in force at login, keyed by
the session's token (app.web.sessions), so a changed password ends every session. Sessions
from before this revision have none and end at their next request: log in again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('admin_sessions') as batch:
        batch.add_column(sa.Column('credential', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('admin_sessions') as batch:
        batch.drop_column('credential')
