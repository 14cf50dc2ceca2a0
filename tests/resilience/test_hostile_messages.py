"""Scenario 6: hostile payloads put straight onto every queue — Celery `send_task` with wrong
arguments, unknown task names, raw non-Celery messages published with kombu (no task header,
text, pickle, broken JSON, a task header over a body that is no task). Each leaves a recorded
rejection (a FAILURE task run with its reason, or REJECTED), nothing is stored, no retry loop
starts, no worker or pool process dies, and the pipeline works on afterwards."""

from __future__ import annotations

import contextlib
import pickle
import time
import uuid
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Producer

import celeryconfig
from tests.resilience.audit import assert_clean
from tests.resilience.procs import wait_until
from tests.resilience.scenario import finish, record

PIPELINE_TABLES = ("market_data_runs", "signals", "orders", "fills", "evaluations")


class _Exploit:
    """A pickle that would create a file when loaded: it must never be."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _wrong_calls() -> list[tuple[str, list, dict, str]]:
    """(task, args, kwargs, what the recorded error must say)."""
    signals, risk, execution = (
        celeryconfig.SIGNALS_TASK,
        celeryconfig.RISK_TASK,
        celeryconfig.EXECUTION_TASK,
    )
    market = celeryconfig.MARKET_DATA_TASK
    return [
        (signals, ["not-a-run-id"], {}, "invalid stage_message"),
        (risk, [None], {}, "invalid stage_message"),
        (execution, [-1], {}, "invalid stage_message"),
        (signals, [2**70], {}, ""),
        (risk, [{"$where": "1"}], {}, "invalid stage_message"),
        (execution, [1, 2, 3], {}, "TypeError"),
        (signals, [], {}, "TypeError"),
        (risk, [987654], {}, "does not exist"),
        (execution, [], {"run_id": "1; DROP TABLE fills"}, "invalid stage_message"),
        (market, [], {"trigger": {"$gt": ""}}, ""),
        (market, [], {"evil": 1}, "TypeError"),
        (market, [True, 2], {}, "TypeError"),
        (celeryconfig.RECONCILE_TASK, ["x"], {}, "TypeError"),
        (celeryconfig.REFRESH_MARKETS_TASK, [1], {}, "TypeError"),
    ]


def _raw_messages(marker: Path) -> list[tuple[str, list[dict]]]:
    """(phase, kombu publish() arguments), published on every queue. A message with
    `headers` gets its task id there."""
    exploit = pickle.dumps(_Exploit(marker))
    pickled = {"content_type": "application/x-python-serialize", "content_encoding": "binary"}
    v2 = [[1], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    return [
        (
            "no task header",
            [
                {"body": {"hello": "world"}, "serializer": "json"},
                {"body": "just a string", "content_type": "text/plain",
                 "content_encoding": "utf-8"},
                {"body": b"{not json", "content_type": "application/json",
                 "content_encoding": "utf-8"},
                {"body": exploit, **pickled},
            ],
        ),
        (
            "pickle under a task header",
            [{"body": exploit, **pickled, "headers": {"task": celeryconfig.SIGNALS_TASK}}],
        ),
        *(
            (
                f"a task header with {field}={value!r}",
                [{"body": v2, "serializer": "json",
                  "headers": {"task": celeryconfig.RISK_TASK, field: value}}],
            )
            for field, value in (
                ("eta", "not-a-date"), ("expires", "never"), ("timelimit", "abc"),
            )
        ),
        (
            "a task header over a body that is no task",
            [{"body": {"not": "a task body"}, "serializer": "json",
              "headers": {"task": celeryconfig.RISK_TASK}}],
        ),
    ]  # fmt: skip


def _all_recorded(stack, ids: list[str]) -> bool:
    if not ids:
        return False
    done = stack.scalar(
        "SELECT count(*) FROM task_runs WHERE task_id = ANY(:ids) "
        "AND state IN ('FAILURE', 'REJECTED')",
        ids=ids,
    )
    return done == len(ids)


def _purge(stack) -> None:
    client = stack.redis.client()
    try:
        client.delete(*celeryconfig.QUEUES, "unacked", "unacked_index")
    finally:
        client.close()


@pytest.mark.timeout(150)
def test_hostile_messages_are_refused_and_recorded(make_stack, results, request, tmp_path):
    name = request.node.name
    results.scenario(name)
    stack = make_stack()
    worker = stack.start_worker()
    legit = stack.send_market_data()
    wait_until(lambda: stack.run_done(legit), 30, "a first pipeline pass")
    before = {t: stack.scalar(f"SELECT count(*) FROM {t}") for t in PIPELINE_TABLES}
    pool_before = sorted(worker.children())
    marker = tmp_path / "pickle-was-loaded"

    sent: dict[str, tuple[str, str]] = {}  # task id -> (what, expected fragment)
    for task, args, kwargs, expected in _wrong_calls():
        task_id = f"hostile-{uuid.uuid4()}"
        stack.celery.send_task(task, args=args, kwargs=kwargs, task_id=task_id)
        sent[task_id] = (f"{task}{args}{list(kwargs)}", expected)
    for queue in celeryconfig.QUEUES:
        for evil in ("cdb.evil.run", "os.system", "celery.backend_cleanup"):
            task_id = f"hostile-{uuid.uuid4()}"
            stack.celery.send_task(evil, args=["rm -rf /"], task_id=task_id, queue=queue)
            sent[task_id] = (f"unknown task {evil} on {queue}", "")

    raw_without_id = 0
    deaths: list[str] = []  # which kind of message killed a worker main process
    with Connection(stack.redis.url) as conn, conn.channel() as channel:
        for phase, messages in _raw_messages(marker):
            for queue in celeryconfig.QUEUES:
                producer = Producer(channel, exchange=Exchange(queue), routing_key=queue)
                for message in messages:
                    headers = message.get("headers")
                    if headers:
                        headers["id"] = f"hostile-raw-{uuid.uuid4()}"
                        sent[headers["id"]] = (f"{phase} on {queue}", "")
                    else:
                        raw_without_id += 1
                    producer.publish(**message)
            ids = [t for t, (what, _) in sent.items() if what.startswith(phase)]
            with contextlib.suppress(AssertionError):
                wait_until(
                    lambda ids=ids, w=worker: not w.alive or _all_recorded(stack, ids), 4, phase
                )
            if not worker.alive:
                deaths.append(phase)
                # Its unacknowledged message was restored: does it kill the next one too?
                replacement = stack.replace_worker(worker, wait=False)
                with contextlib.suppress(AssertionError):
                    wait_until(lambda r=replacement: not r.alive, 6, "the replacement to die")
                if not replacement.alive:
                    deaths.append(f"{phase} (again, in the replacement: a poison message)")
                    replacement.kill_group()
                    _purge(stack)
                    replacement = stack.start_worker()
                worker = replacement
                pool_before = sorted(worker.children())

    def recorded() -> dict[str, dict]:
        rows = stack.rows(
            "SELECT task_id, name, state, error, attempts FROM task_runs "
            "WHERE task_id LIKE 'hostile-%' OR state = 'REJECTED'"
        )
        return {r["task_id"]: r for r in rows}

    def settled() -> bool:
        rows = recorded()
        ended = all(
            rows.get(t, {}).get("state") in ("FAILURE", "REJECTED", "SUCCESS") for t in sent
        )
        return ended and sum(stack.queue_lengths().values()) == 0

    with contextlib.suppress(AssertionError):  # what is missing is reported below
        wait_until(settled, 10, "every hostile message to be refused")
    time.sleep(3)  # a retry loop would show by now
    rows = recorded()
    missing = [what for t, (what, _) in sent.items() if t not in rows]
    wrong_state = [
        (what, rows[t]["state"])
        for t, (what, _) in sent.items()
        if t in rows and rows[t]["state"] not in ("FAILURE", "REJECTED")
    ]
    unexplained = [
        (what, rows[t]["error"])
        for t, (what, expected) in sent.items()
        if t in rows and (not rows[t]["error"] or expected not in rows[t]["error"])
    ]
    retried = [
        (rows[t]["name"], rows[t]["attempts"])
        for t in sent
        if rows.get(t, {}).get("attempts", 1) > 1
    ]
    raw_recorded = sum(1 for t, r in rows.items() if r["state"] == "REJECTED" and t not in sent)
    after = {t: stack.scalar(f"SELECT count(*) FROM {t}") for t in PIPELINE_TABLES}
    pool_deaths = worker.child_kills() + [
        (at, line)
        for at, line in worker.lines
        if "exited with" in line and "exitcode 0" not in line
    ]
    decode_errors = stack.logs().count("Can't decode message body")

    # The pipeline still works.
    legit = stack.send_market_data()
    wait_until(lambda: stack.run_done(legit), 30, "a pipeline pass after the hostile messages")
    record(
        results,
        name,
        hostile_inputs=len(sent) + raw_without_id,
        raw_messages=raw_without_id + sum(1 for t in sent if t.startswith("hostile-raw-")),
        worker_deaths=deaths,
        recorded_with_reason=len(sent) - len(missing) - len(unexplained),
        raw_without_id_recorded=raw_recorded,
        raw_without_id_sent=raw_without_id,
        decode_errors_logged_only=decode_errors,
        missing=missing,
        wrong_state=wrong_state,
        unexplained=unexplained[:10],
        retried=retried,
        stored_by_hostile={t: after[t] - before[t] for t in PIPELINE_TABLES},
        pickle_loaded=marker.exists(),
        pool_deaths=len(pool_deaths),
    )
    result = finish(stack, results, name, settle_timeout=30)

    assert not deaths, f"hostile messages killed the worker: {deaths}"
    assert worker.alive and sorted(worker.children()) == pool_before and not pool_deaths
    assert not marker.exists(), "a pickled message was loaded"
    assert after == before, (before, after)
    assert not missing and not wrong_state and not retried, (missing, wrong_state, retried)
    assert not unexplained, unexplained
    assert raw_recorded >= raw_without_id, (
        f"{raw_without_id} raw messages without a task id sent, {raw_recorded} recorded as "
        f"REJECTED ({decode_errors} only logged as undecodable)"
    )
    assert_clean(result, worker.tail(30))
