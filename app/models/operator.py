"""What the operator surfaces add: an audit of operator actions, stage-latency aggregates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class OperatorAction(Base):
    """The one audit trail: who did what, when and why, from the admin panel or the CLI
    (halt, resume, release-drawdown, re-run, run-pipeline, acknowledge, paper-reset...).
    `username` is the panel user, or the OS user running `cdb` (source "cli")."""

    __tablename__ = "operator_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    action: Mapped[str] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8), default="panel", server_default="panel")
    reason: Mapped[str | None] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(String(64), index=True)  # task or alert id
    outcome: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(index=True)


class StageLatencyBucket(Base):
    """A histogram bucket: how many runs of `stage` took at most `le_ms` and more than the
    bucket below (not cumulative: a task end increments one row; /metrics sums them).

    A scrape of /metrics reads a few rows instead of the whole task_runs table. A missing
    row means a count of zero.
    """

    __tablename__ = "stage_latency_buckets"

    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    le_ms: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(BigInteger)


class StageLatencyTotal(Base):
    """Count and sum of every finished run of a stage (the histogram's +Inf bucket and sum)."""

    __tablename__ = "stage_latency_totals"

    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    sum_ms: Mapped[int] = mapped_column(BigInteger)


class AdminSession(Base):
    """A logged-in admin session, kept server-side: the signed cookie carries only its id.

    Logging out revokes it; it ends after an absolute lifetime whatever the activity, and
    after a while without any."""

    __tablename__ = "admin_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the token
    username: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime | None]
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    # HMAC-SHA256 of the ADMIN_PASSWORD it was made with, keyed by the token (app.web.sessions)
    credential: Mapped[str | None] = mapped_column(String(64))


class LoginAttempt(Base):
    """Every admin login attempt, for the per-IP and per-username throttle and the audit."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    remote_addr: Mapped[str] = mapped_column(String(64), index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    success: Mapped[bool]


class Counter(Base):
    """A running total kept in the transaction that changes what it counts (orders by side
    and status, fills, rejections by layer, alerts, runs by status), so /metrics reads a
    few rows instead of counting whole tables. `labels` is "k=v,k=v" in a fixed order."""

    __tablename__ = "counters"

    family: Mapped[str] = mapped_column(String(32), primary_key=True)
    labels: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
