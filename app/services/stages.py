"""What every pipeline stage does first with the run id it was handed."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.events import validate
from app.models import MarketDataRun


class UnknownRunError(LookupError):
    """The stage was asked to work on a market-data run that does not exist."""


def check_stage_message(run_id: object) -> None:
    """Reject a malformed stage message (raises app.events.PayloadError)."""
    validate("stage_message", {"run_id": run_id})


def load_run(session: Session, run_id: int) -> MarketDataRun:
    run = session.get(MarketDataRun, run_id)
    if run is None:
        raise UnknownRunError(f"market-data run {run_id} does not exist")
    return run
