"""The `cdb` group, what every command shares, and how errors end: one line on stderr.

Exit codes:
  0  done
  1  the work could not be done: bad settings, a service down or failing (database, Redis,
     MEXC), no database where the settings point, a run that failed
  2  the request itself is wrong: bad arguments, an unknown symbol, interval, revision,
     order or task, a malformed or hostile input file
  130 interrupted (Ctrl-C)

Set CDB_DEBUG=1 to get the Python traceback of an unexpected error instead of its one line.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NoReturn

import click

from app.config import Settings, SettingsError, load_settings, redact_url
from app.logs import configure_logging

log = logging.getLogger("app.cli")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An error the user can act on: `message` says what is wrong and what to do."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


_loaded: list[Settings] = []  # the settings this process loaded, to mask secrets in errors


def one_line(text: str) -> str:
    """Messages end on one line: newlines become "; ", secrets become ***."""
    text = "; ".join(part.strip() for part in str(text).splitlines() if part.strip())
    for settings in _loaded:
        for secret in settings.secret_values():
            text = text.replace(secret, "***")
    return text


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    raise CliError(message, code)


class CdbGroup(click.Group):
    """A click group whose every failure is one line on stderr with a documented exit code."""

    def main(self, args: Any = None, prog_name: Any = None, **extra: Any) -> NoReturn:  # type: ignore[override]
        code = self._run(args, prog_name or "cdb", extra)
        sys.stdout.flush()
        sys.exit(code)

    def _run(self, args: Any, prog_name: str, extra: dict[str, Any]) -> int:
        try:
            result = super().main(args, prog_name, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            return exc.exit_code
        except (click.Abort, KeyboardInterrupt):
            click.echo("error: interrupted", err=True)
            return EXIT_INTERRUPTED
        except click.ClickException as exc:
            hint = ""
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                hint = f" (see `{exc.ctx.command_path} --help`)"
            click.echo(f"error: {one_line(exc.format_message())}{hint}", err=True)
            return exc.exit_code
        except CliError as exc:
            click.echo(f"error: {one_line(str(exc))}", err=True)
            return exc.code
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else EXIT_FAILED
        except Exception as exc:
            if os.environ.get("CDB_DEBUG"):
                raise
            message, code = describe_error(exc)
            click.echo(f"error: {one_line(message)}", err=True)
            return code
        return result if isinstance(result, int) else 0


def describe_error(exc: BaseException) -> tuple[str, int]:
    """What an exception from a service means to the person who ran the command."""
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import RedisError
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from app.exchange.errors import ExchangeError, InvalidIntervalError, InvalidSymbolError

    settings = _loaded[-1] if _loaded else None
    if isinstance(exc, SettingsError):
        return str(exc), EXIT_FAILED
    if isinstance(exc, InvalidSymbolError | InvalidIntervalError):
        return f"{exc.exchange_message or exc} (MEXC code {exc.code})", EXIT_USAGE
    if isinstance(exc, ExchangeError):
        return str(exc), EXIT_FAILED
    if isinstance(exc, BrokerError | RedisError):
        where = redact_url(settings.broker_url) if settings else "REDIS_URL"
        return (
            f"cannot reach the broker at {where}: {_first_line(exc)}; start Redis or set "
            "REDIS_URL to one that runs (`cdb status` shows what is in use)",
            EXIT_FAILED,
        )
    if isinstance(exc, DBAPIError):
        return database_message(exc.orig or exc), EXIT_FAILED
    if isinstance(exc, SQLAlchemyError):
        return database_message(exc), EXIT_FAILED
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), EXIT_FAILED
    return (
        f"unexpected {type(exc).__name__}: {_first_line(exc)} (a bug: please report it; "
        "CDB_DEBUG=1 shows the traceback)",
        EXIT_FAILED,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def database_message(exc: BaseException) -> str:
    settings = _loaded[-1] if _loaded else None
    where = redact_url(settings.sqlalchemy_url) if settings else "the database"
    return (
        f"cannot use the database {where}: {_first_line(exc)}; is it running and reachable? "
        "(`cdb status` shows what is in use; DATABASE_URL chooses another)"
    )


@click.group(cls=CdbGroup)
def main() -> None:
    """Claire de Binaire: paper trading on MEXC, as a Celery pipeline.

    Data goes to stdout as JSON; errors are one line on stderr (exit 1: the work could not be
    done, 2: the request is wrong). `cdb status` shows which state folder, database and Redis
    every command uses."""


# --- what commands share -----------------------------------------------------------


def settings(ctx: click.Context) -> Settings:
    """The validated settings (loaded once per command); exits 1 on unusable ones."""
    root = ctx.find_root()
    if root.obj is None:
        try:
            root.obj = load_settings()
        except SettingsError as exc:
            fail(str(exc))
        _loaded.append(root.obj)
        configure_logging("cli", "WARNING", root.obj.secret_values())
        # What the services log as they work (alerts, rejected data) is in the JSON output.
        logging.getLogger("app.services").setLevel(logging.ERROR)
    return root.obj


def emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=json_default, ensure_ascii=False))


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return iso_utc(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def iso_utc(value: datetime) -> str:
    """The CLI's one time format: 2026-11-30T01:52:02Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    return datetime.now(UTC)


def database_exists(settings: Settings) -> bool:
    """False for an embedded SQLite file that is not there (we never create one by asking)."""
    return settings.database_url is not None or settings.sqlite_path.is_file()


def no_database_message(settings: Settings) -> str:
    return (
        f"no database at {settings.sqlite_path} (STATE_DIR={settings.state_dir}); "
        "create one there with `cdb db upgrade`, or point STATE_DIR or DATABASE_URL at the "
        "database you use (`cdb status` shows what this command uses)"
    )


def app_database(ctx: click.Context):  # type: ignore[no-untyped-def]
    """Settings and the bound database, after checking the database exists and is migrated.

    Never creates a database: a missing one is an error that says where it looked."""
    from app import create_app, migrate
    from app.extensions import db as database

    config = settings(ctx)
    if not database_exists(config):
        fail(no_database_message(config))
    revision = migrate.current_revision(config.sqlalchemy_url)
    if revision not in migrate.head_revisions():
        state = "has no schema" if revision is None else f"is at revision {revision}"
        fail(
            f"the database {redact_url(config.sqlalchemy_url)} {state}, not the current one "
            f"({', '.join(migrate.head_revisions())}); run `cdb db upgrade`"
        )
    create_app(config)
    return config, database


def celery_app(config: Settings):  # type: ignore[no-untyped-def]
    from app import create_app

    return create_app(config).extensions["celery"]


def with_session(database: Any, read: Callable[[Any], Any]) -> Any:
    with database.transaction() as session:
        return read(session)


exact_option = click.option(
    "--exact",
    is_flag=True,
    help="Exact stored values instead of prices/quantities at the symbol's precision and "
    "money to the cent.",
)
