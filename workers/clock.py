"""The wall clock, injected into the domain by the tasks."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
