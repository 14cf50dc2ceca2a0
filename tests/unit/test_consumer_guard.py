"""The consumer's check of a task message's shape (the real workers: tests/resilience)."""

from __future__ import annotations

import json

import pytest
from kombu.exceptions import DecodeError

from workers.consumer import message_problem


class Message:
    def __init__(self, headers, body):
        self.headers, self.body = headers, body

    def decode(self):
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise DecodeError(str(exc)) from exc


TASK = {"task": "cdb.signals.run", "id": "x"}
GOOD = json.dumps([[1], {"a": 1}, {"callbacks": None}])


@pytest.mark.parametrize(
    "headers",
    [TASK, TASK | {"timelimit": [None, None]}, TASK | {"timelimit": [20, 30.5]}, {}, None],
)
def test_a_well_formed_message_or_one_without_a_task_header_passes(headers):
    assert message_problem(Message(headers, GOOD)) is None


@pytest.mark.parametrize(
    ("headers", "body", "problem"),
    [
        (TASK | {"timelimit": "abc"}, GOOD, "timelimit"),
        (TASK | {"timelimit": [1, 2, 3]}, GOOD, "timelimit"),
        (TASK | {"timelimit": ["a", 1]}, GOOD, "timelimit"),
        (TASK | {"task": 5}, GOOD, "task header"),
        (TASK, json.dumps({"args": []}), "body"),
        (TASK, json.dumps([[1], {}]), "body"),
        (TASK, json.dumps(["ab", {}, {}]), "body"),
        (TASK, json.dumps([[], [], {}]), "body"),
        (TASK, json.dumps("text"), "body"),
    ],
)
def test_a_malformed_task_message_is_named(headers, body, problem):
    assert problem in message_problem(Message(headers, body))


def test_an_undecodable_body_is_left_to_celery():
    assert message_problem(Message(TASK, "{broken")) is None
