"""Bulk writes that a repeated run can do again without duplicating rows."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def upsert(
    session: Session,
    model: type,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    *,
    update: bool = True,
    unless_same: Sequence[str] = (),
) -> None:
    """Insert rows; where one with the same unique `keys` exists, overwrite its other columns
    (or, with update=False, keep the existing row as it is). With `unless_same`, an existing
    row whose values in those columns are all the same is left as it is: not rewritten (no
    new row version, no WAL), its other columns not overwritten.

    One statement per (table, columns, keys) is built once and executed with every row as
    its parameters (SQLAlchemy's "insertmanyvalues" batches them into multi-row INSERTs), so
    a run of hundreds of rows costs no per-row SQL compilation. Rows of one call must have
    the same keys."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    columns = tuple(rows[0])
    statement = _statement(
        dialect, model.__table__, columns, tuple(keys), update, tuple(unless_same)
    )
    session.execute(statement, list(rows))


@cache
def _statement(
    dialect: str,
    table: Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    update: bool,
    unless_same: tuple[str, ...] = (),
) -> Insert:
    statement = INSERTS[dialect](table)
    updates = {c: statement.excluded[c] for c in columns if c not in keys} if update else {}
    if updates and unless_same:
        changed = or_(*(table.c[c].is_distinct_from(statement.excluded[c]) for c in unless_same))
        return statement.on_conflict_do_update(
            index_elements=list(keys), set_=updates, where=changed
        )
    if updates:
        return statement.on_conflict_do_update(index_elements=list(keys), set_=updates)
    return statement.on_conflict_do_nothing(index_elements=list(keys))


def increment(
    executor: Session | Connection,
    model: type,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
) -> None:
    """Insert the rows, or add their numbers to the existing ones, in one atomic statement
    (`executor`: a session or a Core connection)."""
    if not rows:
        return
    bind = executor if isinstance(executor, Connection) else executor.get_bind()
    statement = _increment_statement(
        bind.dialect.name, model.__table__, tuple(rows[0]), tuple(keys)
    )
    executor.execute(statement, list(rows))


@cache
def _increment_statement(
    dialect: str, table: Table, columns: tuple[str, ...], keys: tuple[str, ...]
) -> Insert:
    statement = INSERTS[dialect](table)
    sums = {c: table.c[c] + statement.excluded[c] for c in columns if c not in keys}
    return statement.on_conflict_do_update(index_elements=list(keys), set_=sums)
