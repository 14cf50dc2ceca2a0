"""How big the database and each of its tables are: PostgreSQL's pg_total_relation_size
(heap, indexes and TOAST), SQLite's dbstat (pages of the table and of its indexes)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

IGNORED = {"alembic_version", "bench_template", "bench_copies"}


def table_bytes(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            rows = conn.execute(
                text(
                    "SELECT tablename, pg_total_relation_size(quote_ident(tablename)) "
                    "FROM pg_tables WHERE schemaname = current_schema()"
                )
            )
        else:
            rows = conn.execute(
                text(
                    "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d "
                    "JOIN sqlite_master m ON m.name = d.name GROUP BY m.tbl_name"
                )
            )
        sizes = {name: int(size or 0) for name, size in rows}
    return {name: size for name, size in sorted(sizes.items()) if name not in IGNORED}


def database_bytes(engine: Engine) -> int:
    """The whole database: pg_database_size, or the SQLite file with its WAL (checkpointed
    first, so the pages are in the file)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar())
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = Path(str(engine.url.database))
    return sum(
        Path(f"{path}{suffix}").stat().st_size
        for suffix in ("", "-wal")
        if Path(f"{path}{suffix}").exists()
    )


def row_counts(engine: Engine, tables: list[str]) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()) for t in tables}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after.get(name, 0) - before.get(name, 0) for name in sorted(after)}
