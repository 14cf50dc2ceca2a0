"""`python -m app.flower [FLOWER OPTIONS]`: Flower for the project's Celery app, read-only
unless FLOWER_ALLOW_WRITE=true.

It runs Flower exactly as `celery -A workers flower [FLOWER OPTIONS]` would (options such as
--port, --address and --purge_offline_workers, and Flower's own FLOWER_* variables such as
FLOWER_BASIC_AUTH, work the same), with one difference: Flower's write API is refused.

What Flower can do to the system when writes are allowed, to anyone who has its login:

- workers: shut one down (`/api/worker/shutdown`); restart, grow, shrink or autoscale its
  pool (`/api/worker/pool/restart|grow|shrink|autoscale`); make it consume from another
  queue or stop consuming one (`/api/worker/queue/add-consumer|cancel-consumer`), which
  can stop a pipeline stage altogether;
- tasks: send any registered task with any arguments (`/api/task/send-task`,
  `/api/task/async-apply`, `/api/task/apply`), which bypasses the admin panel's audit
  trail (a market-data run, an execution of any run...); revoke or terminate a task
  (`/api/task/revoke`, with `terminate=true` it kills the process running it) or abort it
  (`/api/task/abort`); change a task type's rate limit or soft/hard time limits on every
  worker (`/api/task/rate-limit`, `/api/task/timeout`).

The pipeline's own controls (halt, resume, re-run, run now) are in the admin panel, which
records who did what. So by default every one of those URLs answers 403 (after the basic-auth
check, so an anonymous caller still gets 401), Flower's `read_only` mode is on, which also
hides the buttons in its pages, and what stays is watching: workers, tasks, queues, the
broker, /metrics and /healthcheck. FLOWER_ALLOW_WRITE=true (or 1, yes, on) gives Flower its
write API back; anything but true/false values stops the start with exit code 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

ALLOW_WRITE = "FLOWER_ALLOW_WRITE"
TRUE = ("1", "true", "yes", "on")
FALSE = ("", "0", "false", "no", "off")
CELERY_APP = "workers"
CELERY_GLOBAL_FLAGS = ("--quiet", "-q")  # celery's own, given before `flower`
WRITE_METHODS = ("post", "put", "patch", "delete")
REFUSAL = (
    "Flower's write API is disabled here: set FLOWER_ALLOW_WRITE=true where Flower runs to "
    "allow it (see app/flower.py). Use the admin panel to halt, resume or re-run."
)


class SettingError(ValueError):
    pass


def write_allowed(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    value = environ.get(ALLOW_WRITE, "").strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise SettingError(f"{ALLOW_WRITE}={value!r} is not true or false; use true or false")


def _handler_class(spec: Any) -> type:
    return spec.handler_class if hasattr(spec, "handler_class") else spec[1]


def _pattern(spec: Any) -> str:
    return spec.regex.pattern if hasattr(spec, "regex") else spec[0]


def is_write_handler(cls: type) -> bool:
    """A handler of Flower's API (flower.api.*) that changes something: one that answers a
    POST, PUT, PATCH or DELETE of Flower's own (tornado's defaults only say 405)."""
    if not cls.__module__.startswith("flower.api"):
        return False
    flower_classes = [klass for klass in cls.__mro__ if klass.__module__.startswith("flower.")]
    return any(method in vars(klass) for klass in flower_classes for method in WRITE_METHODS)


def refusing_handler() -> type:
    """A Flower API handler that checks the login, then refuses with 403."""
    from flower.api import BaseApiHandler
    from tornado.web import HTTPError

    class WriteRefused(BaseApiHandler):
        def prepare(self) -> None:
            super().prepare()
            if not self.current_user:  # wrong basic auth raises 401 in get_current_user
                raise HTTPError(401)
            raise HTTPError(403, REFUSAL)

    return WriteRefused


def refuse_writes(handlers: list[Any]) -> list[str]:
    """Replace, in place, every write handler of Flower's URL list by one that refuses;
    returns the URL patterns replaced."""
    refused = refusing_handler()
    replaced = []
    for index, spec in enumerate(handlers):
        if is_write_handler(_handler_class(spec)):
            handlers[index] = (_pattern(spec), refused)
            replaced.append(_pattern(spec))
    return replaced


def celery_argv(args: Sequence[str], allow_write: bool) -> list[str]:
    """`celery -A workers [--quiet] flower ARGS` (read-only unless writes are allowed)."""
    global_flags = [arg for arg in args if arg in CELERY_GLOBAL_FLAGS]
    flower_args = [arg for arg in args if arg not in CELERY_GLOBAL_FLAGS]
    if not allow_write:
        flower_args.append("--read_only=true")  # the last one wins: the UI hides its buttons
    return ["celery", "-A", CELERY_APP, *global_flags, "flower", *flower_args]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        allow = write_allowed()
    except SettingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not allow:
        import flower.urls

        refuse_writes(flower.urls.handlers)
    from celery.bin.celery import main as celery_main

    sys.argv = celery_argv(args, allow)
    return celery_main()


if __name__ == "__main__":
    sys.exit(main())
