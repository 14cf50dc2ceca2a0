"""Bulk writes that a repeated run can do again without duplicating rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

# SQLite allows 32,766 bound parameters a statement; stay well below for wide rows.
CHUNK = 500


def upsert(
    session: Session,
    model: type,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    *,
    update: bool = True,
) -> None:
    """Insert rows; where one with the same unique `keys` exists, overwrite its other columns
    (or, with update=False, keep the existing row as it is)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    for start in range(0, len(rows), CHUNK):
        statement = insert(model).values(list(rows[start : start + CHUNK]))
        updates = {c: statement.excluded[c] for c in rows[0] if c not in keys} if update else {}
        if updates:
            statement = statement.on_conflict_do_update(index_elements=list(keys), set_=updates)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=list(keys))
        session.execute(statement)
