"""The worker's consumer, made safe against messages that are not what they claim.

Celery treats a task message whose body does not unpack to ``[args, kwargs, embed]``, or
whose ``timelimit`` header is not a pair, as an unrecoverable error: the worker shuts down,
the message goes back to the queue and the next worker dies on it (a poison message).
Such a message is refused here as an invalid task before Celery looks at it, and a body
that cannot be decoded at all is reported (``task_rejected``) as well as logged, so every
refused message leaves a REJECTED task run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from celery import signals
from celery.exceptions import InvalidTaskError
from celery.worker.consumer.consumer import Consumer
from kombu.exceptions import ContentDisallowed, DecodeError


def message_problem(message: Any) -> str | None:
    """Why a message carrying a task header cannot be a task message, or None."""
    headers = message.headers
    if not isinstance(headers, Mapping) or "task" not in headers:
        return None  # Celery's own handling: unknown format or protocol 1
    if not isinstance(headers["task"], str):
        return "the task header is not a name"
    limits = headers.get("timelimit")
    if limits is not None and not (
        isinstance(limits, Sequence)
        and not isinstance(limits, str | bytes)
        and len(limits) == 2
        and all(limit is None or isinstance(limit, int | float) for limit in limits)
    ):
        return "the timelimit header is not a pair of numbers"
    try:
        body = message.decode()
    except (ContentDisallowed, DecodeError):
        return None  # Celery refuses these itself, as invalid or undecodable
    if not (
        isinstance(body, Sequence)
        and not isinstance(body, str | bytes)
        and len(body) == 3
        and isinstance(body[0], Sequence)
        and not isinstance(body[0], str | bytes)
        and isinstance(body[1], Mapping)
        and (body[2] is None or isinstance(body[2], Mapping))
    ):
        return "the body is not [args, kwargs, embed]"
    return None


class GuardedConsumer(Consumer):
    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        handle = super().create_task_handler(*args, **kwargs)

        def on_task_received(message: Any) -> Any:
            problem = message_problem(message)
            if problem is not None:
                return self.on_invalid_task(None, message, InvalidTaskError(problem))
            return handle(message)

        return on_task_received

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        super().on_decode_error(message, exc)
        signals.task_rejected.send(sender=self, message=message, exc=exc)
