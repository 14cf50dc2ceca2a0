"""`cdb`: the command line for people and scripts. Data goes to stdout as JSON; an error is
one line on stderr with exit code 1 (the work could not be done) or 2 (the request is
wrong); see app.cli.base."""

from app.cli import bench, database, market, operator, sessions, stack, stream, trading  # noqa: F401
from app.cli.base import main

__all__ = ["main"]
