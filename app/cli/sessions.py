"""`cdb export` and `cdb replay`: recorded market sessions, replayed deterministically."""

from __future__ import annotations

from pathlib import Path

import click

from app.cli.base import EXIT_USAGE, app_database, emit, fail, main, settings


@main.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--from-run", type=click.IntRange(1), help="First market-data run id.")
@click.option("--to-run", type=click.IntRange(1), help="Last market-data run id.")
@click.pass_context
def export(ctx: click.Context, file: Path, from_run: int | None, to_run: int | None) -> None:
    """Write recorded market-data runs to FILE (JSON lines) for `cdb replay`."""
    from app.services.replay import export_session

    if from_run is not None and to_run is not None and from_run > to_run:
        fail(f"--from-run {from_run} is after --to-run {to_run}", EXIT_USAGE)
    config, database = app_database(ctx)
    partial = file.with_name(f".{file.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            count = export_session(database, config, out, from_run, to_run)
        partial.replace(file)
    finally:
        partial.unlink(missing_ok=True)
    emit({"file": str(file), "runs": count})


@main.command("replay")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def replay(ctx: click.Context, file: Path) -> None:
    """Feed a recorded session through signals, risk and execution; print the summary.

    Runs on a throwaway database with the data's clock: the same file always gives the
    same decisions and fills (compare the digest). A file that is not a session exported by
    `cdb export` — or holds data the live pipeline would have rejected — exits with 2."""
    from app.services.replay import ReplayError, replay_session

    config = settings(ctx)

    def progress(runs: int) -> None:
        if runs % 10 == 0:
            click.echo(f"replayed {runs} runs", err=True)

    try:
        with file.open("r", encoding="utf-8") as source:
            emit(replay_session(config, source, progress))
    except UnicodeDecodeError:
        fail(f"{file} is not a text file (a session is JSON lines from `cdb export`)", EXIT_USAGE)
    except ReplayError as exc:
        fail(f"{file}: {exc}", EXIT_USAGE)
