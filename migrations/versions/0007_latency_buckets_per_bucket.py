"""stage latency buckets hold each bucket's own count

Was: a cumulative bucket per (stage, le_ms), so a task end incremented every bucket at or
above its run time (twelve rows for a quick stage). Now: the runs that fell into that bucket
only (le_ms of the previous bucket < run time <= le_ms), one row per task end; /metrics sums
them into Prometheus's cumulative buckets. Existing counts are converted both ways.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 16:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of app.services.metrics.LATENCY_BUCKETS_MS as of this revision.
LATENCY_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 180000)

BUCKETS = sa.table(
    'stage_latency_buckets',
    sa.column('stage', sa.String),
    sa.column('le_ms', sa.Integer),
    sa.column('count', sa.BigInteger),
)


def upgrade() -> None:
    def per_bucket(counts: dict[int, int]) -> dict[int, int]:
        out, below = {}, 0
        for le_ms in sorted(counts):
            if counts[le_ms] - below:
                out[le_ms] = counts[le_ms] - below
            below = counts[le_ms]
        return out

    _rewrite(per_bucket)


def downgrade() -> None:
    def cumulative(counts: dict[int, int]) -> dict[int, int]:
        out, total = {}, 0
        for le_ms in LATENCY_BUCKETS_MS:
            total += counts.get(le_ms, 0)
            if total:
                out[le_ms] = total
        return out

    _rewrite(cumulative)


def _rewrite(convert) -> None:
    bind = op.get_bind()
    by_stage: dict[str, dict[int, int]] = {}
    for stage, le_ms, count in bind.execute(sa.select(BUCKETS)):
        by_stage.setdefault(stage, {})[le_ms] = count
    bind.execute(BUCKETS.delete())
    rows = [
        {'stage': stage, 'le_ms': le_ms, 'count': count}
        for stage, counts in by_stage.items()
        for le_ms, count in convert(counts).items()
    ]
    if rows:
        bind.execute(BUCKETS.insert(), rows)
