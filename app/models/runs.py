"""The record of every market-data run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base

RUN_STATES = ("running", "ok", "partial", "failed")
STAGE_MARKS = {
    "signals": "signals_done_at",
    "risk": "risk_done_at",
    "execution": "execution_done_at",
}


class MarketDataRun(Base):
    """One market-data run: when, what was screened in, what was stored, what went wrong.

    `run_key` is the Celery task id (or a generated id for CLI runs), so a redelivered
    message or a manual re-run of the same task finds its run instead of making another.
    """

    __tablename__ = "market_data_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_key: Mapped[str] = mapped_column(String(64), unique=True)
    trigger: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=1)
    parameters: Mapped[dict[str, Any]]
    tickers_received: Mapped[int] = mapped_column(default=0)
    universe_size: Mapped[int] = mapped_column(default=0)
    screened_symbols: Mapped[list[Any]]
    stored_symbols: Mapped[list[Any]]
    rejections: Mapped[list[Any]]
    retries: Mapped[list[Any]]
    error: Mapped[str | None] = mapped_column(Text)
    # When each later stage finished its work for this run (None: not yet). A redelivered or
    # re-run stage sends the next one on while its mark is missing; the reconciler re-drives
    # a run whose chain stopped.
    signals_done_at: Mapped[datetime | None]
    risk_done_at: Mapped[datetime | None]
    execution_done_at: Mapped[datetime | None]
    redrives: Mapped[int] = mapped_column(default=0, server_default="0")
    redriven_at: Mapped[datetime | None]
    chain_note: Mapped[str | None] = mapped_column(Text)  # what the reconciler did and why
    # When the run's newest stored ticker was current (None: it stored none).
    data_time: Mapped[datetime | None]
    # Outcome -> how many of the universe's symbols the strategy gave it (every symbol is
    # evaluated; only the interesting ones keep an `evaluations` row).
    evaluation_counts: Mapped[dict[str, Any] | None]
