"""Alembic owns the schema: upgrade, agreement with the models, one head, downgrade."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app import migrate
from app.models import Base

pytestmark = pytest.mark.integration


def _differences(url):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def _tables(url):
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_single_head():
    assert len(migrate.head_revisions()) == 1


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_upgrade_matches_models_and_downgrades_to_base(backend, empty_pg_url, tmp_path):
    url = empty_pg_url if backend == "postgresql" else f"sqlite:///{tmp_path}/cdb.sqlite3"
    migrate.upgrade(url)
    assert migrate.current_revision(url) == migrate.head_revisions()[0]
    assert _tables(url) == set(Base.metadata.tables)
    assert _differences(url) == []
    migrate.downgrade(url, "base")
    assert migrate.current_revision(url) is None
    assert _tables(url) == set()
