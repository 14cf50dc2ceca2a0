"""Validation of stage payloads against the one event schema (app/schemas/events.schema.json)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

KINDS = ("stage_message", "market_data", "signal", "order", "order_result", "alert")


class PayloadError(ValueError):
    """A payload does not match the schema; the message names the field and the value."""

    def __init__(self, kind: str, problems: list[str]) -> None:
        self.kind = kind
        self.problems = problems
        super().__init__(f"invalid {kind} payload: " + "; ".join(problems))


@cache
def schema() -> dict[str, Any]:
    text = resources.files("app").joinpath("schemas/events.schema.json").read_text()
    return json.loads(text)


@cache
def _validator(kind: str) -> Draft202012Validator:
    if kind not in KINDS:
        raise KeyError(f"unknown payload kind {kind!r}; known: {', '.join(KINDS)}")
    return Draft202012Validator({**schema(), "$ref": f"#/$defs/{kind}"})


def validate(kind: str, payload: Any) -> None:
    errors = sorted(_validator(kind).iter_errors(payload), key=lambda e: list(e.path))
    if errors:
        problems = []
        for error in errors[:5]:
            where = ".".join(str(p) for p in error.path) or "(payload)"
            problems.append(f"{where}={error.instance!r}: {error.message}")
        raise PayloadError(kind, problems)
