"""Rows shaped like real runs, in bulk: copies of the rows real runs wrote.

The bench never invents rows. It lets the real workers do a few runs (the template), then
copies every row those runs wrote, as often as needed, inside the database (INSERT … SELECT,
one statement per table and batch of copies): copy k of a row gets its integer key moved
down by k times the table's stride (below zero: the live pipeline's new rows, which take
max + 1, never meet a copy, and the real rows stay the newest by id), every foreign key to a
copied table moved by the parent's stride,
every timestamp moved back by k times the copy's time span, and the string columns of a unique
key that would otherwise repeat (a run key, a task id, a client order id) a `~k` suffix.
JSON, text, numbers and blobs are copied as they are, so the copies weigh what real rows do.

Which tables are copied is read from the database itself (reflected, so a table the schema
gains later is copied too): every table with a foreign-key path to `market_data_runs`, plus
`task_runs` (linked to its run by task ids, not by a key). Klines are keyed by time, not by
run — a candle per symbol and minute however often the runs come — so all of them (not the
template runs') are copied as blocks of their time span (see `copy_time_keyed`), with their
run reference unset.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import DateTime, Engine, Integer, MetaData, String, Table, UniqueConstraint, text
from sqlalchemy.engine import Connection

RUNS = "market_data_runs"
TIME_KEYED = {"klines": "open_time"}  # table -> the time column of its unique key
TEMPLATE = "bench_template"
COPIES = "bench_copies"


def _task_runs_link(runs: str) -> str:
    keys = f"SELECT r.run_key FROM {RUNS} r WHERE {runs}"
    return f"(src.task_id IN ({keys}) OR src.root_task_id IN ({keys}))"


# Tables tied to a run by something other than a foreign key.
EXTRA_LINKS = {"task_runs": _task_runs_link}


@dataclass
class TablePlan:
    table: Table
    predicate: str  # selects the template's rows (as `src`)
    key: str | None  # the integer primary key moved by the stride
    parents: dict[str, str] = field(default_factory=dict)  # column -> copied table
    times: list[str] = field(default_factory=list)
    suffixed: list[str] = field(default_factory=list)
    null_columns: list[str] = field(default_factory=list)
    stride: int = 0

    @property
    def name(self) -> str:
        return self.table.name


class Cloner:
    """Copies of the template runs' rows; `tables` limits which tables are copied."""

    def __init__(
        self, engine: Engine, template_run_ids: Sequence[int], tables: Iterable[str] | None = None
    ) -> None:
        if not template_run_ids:
            raise ValueError("no template runs to copy")
        self.engine = engine
        self.dialect = engine.dialect.name
        self.template = sorted(set(template_run_ids))
        self.metadata = MetaData()
        self.metadata.reflect(engine)
        only = set(tables) if tables is not None else None
        self.plans = self._plan(only)
        with engine.begin() as conn:
            self._temp_tables(conn)
            for plan in self.plans:
                if plan.key is not None:
                    top = conn.execute(text(f"SELECT max({plan.key}) FROM {plan.name}")).scalar()
                    plan.stride = int(top or 0) + 1

    # -- planning ---------------------------------------------------------------------------

    def _plan(self, only: set[str] | None) -> list[TablePlan]:
        template = f"src.id IN (SELECT run_id FROM {TEMPLATE})"
        predicates: dict[str, str] = {}
        plans: list[TablePlan] = []
        for table in self.metadata.sorted_tables:
            name = table.name
            if only is not None and name not in only:
                continue
            if name == RUNS:
                predicate = template
            elif name in TIME_KEYED:
                predicate = "1 = 1"  # every candle there: the density per minute is the point
            elif name in EXTRA_LINKS:
                predicate = EXTRA_LINKS[name](f"r.id IN (SELECT run_id FROM {TEMPLATE})")
            else:
                predicate = self._predicate_through_parent(table, predicates)
                if predicate is None:
                    continue
            predicates[name] = predicate
            plans.append(self._table_plan(table, predicate, predicates))
        return plans

    def _predicate_through_parent(self, table: Table, predicates: dict[str, str]) -> str | None:
        """`src.fk IN (SELECT key FROM parent WHERE …)` through the most direct copied parent."""
        links = [
            (fk.parent.name, fk.column.table.name, fk.column.name)
            for fk in table.foreign_keys
            if fk.column.table.name in predicates
        ]
        if not links:
            return None
        links.sort(key=lambda link: link[1] != RUNS)  # a direct link to the runs first
        column, parent, key = links[0]
        alias = f"p_{table.name}"
        inner = predicates[parent].replace("src.", f"{alias}.")
        return f"src.{column} IN (SELECT {alias}.{key} FROM {parent} {alias} WHERE {inner})"

    def _table_plan(self, table: Table, predicate: str, copied: dict[str, str]) -> TablePlan:
        pk = list(table.primary_key.columns)
        key = None
        if len(pk) == 1 and isinstance(pk[0].type, Integer) and not pk[0].foreign_keys:
            key = pk[0].name
        plan = TablePlan(table, predicate, key)
        for fk in table.foreign_keys:
            parent = fk.column.table.name
            if parent in copied and parent != table.name:
                plan.parents[fk.parent.name] = parent
        time_keyed = TIME_KEYED.get(table.name)
        for column in table.columns:
            if isinstance(column.type, DateTime):
                plan.times.append(column.name)
            if time_keyed and column.name in plan.parents:
                plan.null_columns.append(column.name)
        moved = {key, *plan.parents, *plan.times} - {None}
        for unique in self._unique_keys(table):
            if not moved & set(unique):
                plan.suffixed += [
                    c
                    for c in unique
                    if isinstance(table.c[c].type, String) and c not in plan.suffixed
                ]
        return plan

    def _unique_keys(self, table: Table) -> list[list[str]]:
        keys = [[c.name for c in table.primary_key.columns]]
        for constraint in table.constraints:
            columns = [c.name for c in getattr(constraint, "columns", [])]
            if columns and isinstance(constraint, UniqueConstraint):
                keys.append(columns)
        keys += [[c.name for c in index.columns] for index in table.indexes if index.unique]
        return keys

    def _temp_tables(self, conn: Connection) -> None:
        for name, column in ((TEMPLATE, "run_id"), (COPIES, "k")):
            conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
            conn.execute(text(f"CREATE TABLE {name} ({column} INTEGER PRIMARY KEY)"))
        conn.execute(
            text(f"INSERT INTO {TEMPLATE} (run_id) VALUES (:id)"),
            [{"id": run_id} for run_id in self.template],
        )

    def drop_temp_tables(self) -> None:
        with self.engine.begin() as conn:
            for name in (TEMPLATE, COPIES):
                conn.execute(text(f"DROP TABLE IF EXISTS {name}"))

    # -- copying ----------------------------------------------------------------------------

    @property
    def run_tables(self) -> list[TablePlan]:
        return [plan for plan in self.plans if plan.name not in TIME_KEYED]

    @property
    def time_tables(self) -> list[TablePlan]:
        return [plan for plan in self.plans if plan.name in TIME_KEYED]

    def template_span_seconds(self, plan: TablePlan) -> float:
        """The time a time-keyed table's template rows cover, one interval included."""
        column = TIME_KEYED[plan.name]
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT src.{column} FROM {plan.name} src WHERE {plan.predicate} "
                    f"ORDER BY src.{column}"
                )
            ).scalars()
            times = [t for t in rows if t is not None]
        if not times:
            return 0.0
        first, last = _as_datetime(times[0]), _as_datetime(times[-1])
        distinct = sorted({_as_datetime(t) for t in times})
        step = min(
            ((b - a).total_seconds() for a, b in itertools.pairwise(distinct)),
            default=60.0,
        )
        return (last - first).total_seconds() + max(step, 1.0)

    def copy_runs(self, first: int, last: int, shift_seconds: float) -> None:
        """Copies first..last (k ≥ 1) of the run-keyed tables; copy k is k * shift_seconds
        older than the template."""
        self._copy(self.run_tables, first, last, shift_seconds)

    def copy_time_keyed(self, first: int, last: int, span_seconds: dict[str, float]) -> None:
        """Copies first..last of the time-keyed tables, each span_seconds[table] older than
        the one before, so copies never overlap and the density per minute is the template's."""
        for plan in self.time_tables:
            if span_seconds.get(plan.name):
                self._copy([plan], first, last, math.ceil(span_seconds[plan.name]))

    def _copy(self, plans: list[TablePlan], first: int, last: int, shift: float) -> None:
        if last < first:
            return
        with self.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM {COPIES}"))
            conn.execute(
                text(f"INSERT INTO {COPIES} (k) VALUES (:k)"),
                [{"k": k} for k in range(first, last + 1)],
            )
            for plan in plans:
                conn.execute(text(self._statement(plan, shift)))

    def _statement(self, plan: TablePlan, shift: float) -> str:
        strides = {p.name: p.stride for p in self.plans}
        names, values = [], []
        for column in plan.table.columns:
            name = column.name
            names.append(name)
            source = f'src."{name}"'
            if name in plan.null_columns:
                values.append("NULL")
            elif name == plan.key:
                values.append(f"{source} - cp.k * {plan.stride}")
            elif name in plan.parents:
                values.append(f"{source} - cp.k * {strides[plan.parents[name]]}")
            elif name in plan.times:
                values.append(self._shifted(source, shift))
            elif name in plan.suffixed:
                values.append(f"{source} || '~' || cp.k")
            else:
                values.append(source)
        quoted = ", ".join(f'"{n}"' for n in names)
        # Only the rows that were there before copying began: never a copy of a copy.
        originals = (
            f" AND src.{plan.key} > 0 AND src.{plan.key} < {plan.stride}" if plan.key else ""
        )
        return (
            f"INSERT INTO {plan.name} ({quoted}) SELECT {', '.join(values)} "
            f"FROM {plan.name} src, {COPIES} cp WHERE ({plan.predicate}){originals}"
        )

    def _shifted(self, column: str, seconds: float) -> str:
        if self.dialect == "postgresql":
            return f"{column} - (cp.k * {seconds:.3f}) * INTERVAL '1 second'"
        # SQLite keeps "YYYY-MM-DD HH:MM:SS.ffffff": move the seconds, keep the fraction.
        return (
            f"strftime('%Y-%m-%d %H:%M:%S', {column}, '-' || (cp.k * {int(seconds)}) || "
            f"' seconds') || substr({column}, 20)"
        )


def _as_datetime(value):  # type: ignore[no-untyped-def]
    from datetime import datetime

    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value)).replace(tzinfo=None)
