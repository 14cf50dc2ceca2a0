"""`cdb db …` (Alembic migrations) and `cdb status` (what every command uses)."""

from __future__ import annotations

from typing import Any

import click

from app.cli.base import (
    EXIT_USAGE,
    database_exists,
    emit,
    fail,
    main,
    no_database_message,
    settings,
)
from app.config import Settings, redact_url


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


def _revision_or_fail(revision: str) -> str:
    """REVISION as Alembic knows it; a revision that does not exist is the caller's mistake."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from app import migrate

    if revision in ("head", "base", "heads") or revision.startswith(("+", "-")):
        return revision
    script = ScriptDirectory.from_config(migrate.alembic_config(""))
    try:
        script.get_revision(revision)
    except CommandError:
        known = [r.revision for r in reversed(list(script.walk_revisions()))]
        fail(
            f"unknown revision {revision!r}; known: {', '.join(known)}, head, base",
            EXIT_USAGE,
        )
    return revision


@db.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations up to REVISION (default: head); creates the embedded database."""
    from app import migrate

    config = settings(ctx)
    revision = _revision_or_fail(revision)
    config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = config.sqlalchemy_url
    migrate.upgrade(url, revision)
    emit({"database": redact_url(url), "revision": migrate.current_revision(url)})


@db.command("downgrade")
@click.argument("revision")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Revert migrations down to REVISION ("base" removes every table)."""
    from app import migrate

    config = settings(ctx)
    revision = _revision_or_fail(revision)
    if not database_exists(config):
        fail(no_database_message(config))
    url = config.sqlalchemy_url
    migrate.downgrade(url, revision)
    emit({"database": redact_url(url), "revision": migrate.current_revision(url)})


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the applied and the newest revision."""
    from app import migrate

    config = settings(ctx)
    if not database_exists(config):
        fail(no_database_message(config))
    url = config.sqlalchemy_url
    emit(
        {
            "database": redact_url(url),
            "revision": migrate.current_revision(url),
            "head": list(migrate.head_revisions()),
        }
    )


@main.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Where this command's state lives and what answers: the state folder, the .env read,
    the database (and its schema), Redis and MEXC. The same wherever it is run from."""
    emit(status_report(settings(ctx)))


def status_report(config: Settings) -> dict[str, Any]:
    from app import migrate

    database: dict[str, Any] = {"url": redact_url(config.sqlalchemy_url)}
    if config.database_url is None:
        database["file"] = str(config.sqlite_path)
    if not database_exists(config):
        database.update(exists=False, problem="no database file: run `cdb db upgrade`")
    else:
        try:
            revision = migrate.current_revision(config.sqlalchemy_url)
        except Exception as exc:  # reported, not raised: status shows what is wrong
            database.update(exists=None, problem=str(exc).strip().splitlines()[0])
        else:
            heads = list(migrate.head_revisions())
            database.update(
                exists=True, revision=revision, head=heads, up_to_date=revision in heads
            )
    problem = _redis_problem(config.broker_url)
    credentials = config.state_dir / "credentials.env"
    return {
        "state_dir": str(config.state_dir),
        "env_file": str(config.env_file) if config.env_file else None,
        "database": database,
        "redis": {"url": redact_url(config.broker_url), "answers": problem is None}
        | ({"problem": problem} if problem else {}),
        "redis_key_prefix": config.redis_key_prefix,
        "mexc_base_url": config.mexc_base_url,
        "credentials_file": str(credentials) if credentials.exists() else None,
    }


def _redis_problem(url: str) -> str | None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None
