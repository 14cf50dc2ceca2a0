"""The one audit trail of operator actions, from the admin panel and the CLI alike."""

from __future__ import annotations

import getpass
import json
import logging
from datetime import datetime
from typing import Any

from app.extensions import Database
from app.models import OperatorAction

log = logging.getLogger(__name__)

REASON_MAX = 500  # characters of a reason kept (the panel's form allows as many)
SOURCES = ("panel", "cli")


def cli_user() -> str:
    """Who runs `cdb`: the operating-system user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record_action(
    db: Database,
    username: str,
    action: str,
    now: datetime,
    *,
    source: str = "panel",
    reason: str | None = None,
    target: str | None = None,
    outcome: dict[str, Any] | None = None,
) -> None:
    """Who did what, when and why; `source` is "panel" or "cli"."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    with db.transaction() as session:
        session.add(
            OperatorAction(
                action=action,
                username=username[:64],
                source=source,
                reason=None if reason is None else reason[:REASON_MAX],
                target=None if target is None else str(target)[:64],
                outcome=json.loads(json.dumps(outcome or {}, default=str)),
                created_at=now,
            )
        )
    log.info(
        "operator action",
        extra={"action": action, "user": username, "source": source, "target": target},
    )
