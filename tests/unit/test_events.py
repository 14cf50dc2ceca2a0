"""The stage payload check: the compiled schema accepts and rejects what jsonschema does
(field by field, value by value), and a rejection names the field and the value."""

from __future__ import annotations

import copy

import pytest
from jsonschema import Draft202012Validator

from app.events import KINDS, PayloadError, problems, schema, validate

T = "2026-11-30T12:00:00.250000+00:00"
VALID = {
    "stage_message": {"run_id": 7},
    "market_data": {
        "symbol": "BTCUSDT",
        "price": "91234.5",
        "volume": "12.5",
        "timestamp": T,
        "pct_change": "-1.25",
    },
    "signal": {
        "symbol": "BTCUSDT",
        "direction": "BUY",
        "size": "0.0011",
        "signal_strength": "0.75",
        "timestamp": T,
        "price": "91234.5",
        "reason": "momentum +0.7 %",
        "is_exit": False,
    },
    "order": {
        "client_order_id": "cdb-1-2",
        "symbol": "BTCUSDT",
        "side": "SELL",
        "size": "0.0011",
        "approved_by": ["data_staleness", "daily_drawdown"],
        "risk_checks": [
            {
                "layer": 1,
                "name": "data_staleness",
                "passed": True,
                "action": "none",
                "values": {"age_s": "2.5"},
            },
            {"layer": 6, "name": "stop_loss", "passed": False, "action": "exit", "values": {}},
        ],
        "timestamp": T,
    },
    "order_result": {
        "order_id": 3,
        "status": "FILLED",
        "fill_price": "91250.1",
        "fees": "0.1",
        "timestamp": "2026-11-30T12:00:00Z",
        "reason": None,
    },
    "alert": {
        "code": "DATA_STALE",
        "level": "WARNING",
        "message": "market data is 95 s old",
        "timestamp": T,
    },
}
ODD_VALUES = (
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    1.5,
    "",
    "0",
    "1",
    "x",
    "BUY",
    "-0.5",
    "1e3",
    "1.",
    " 1",
    "2026-11-30 12:00:00",
    [],
    ["x"],
    {},
    {"a": 1},
)


def _jsonschema_accepts(kind, payload) -> bool:
    return not any(
        Draft202012Validator({**schema(), "$ref": f"#/$defs/{kind}"}).iter_errors(payload)
    )


def _mutations(payload):
    """Each field removed, each field (and each nested field) set to each odd value, and
    an extra field."""
    if isinstance(payload, dict):
        for key in payload:
            yield {k: v for k, v in payload.items() if k != key}
            for value in ODD_VALUES:
                yield {**payload, key: value}
            for inner in _mutations(payload[key]):
                yield {**payload, key: inner}
        yield {**payload, "unexpected": "1"}
    elif isinstance(payload, list) and payload:
        for inner in _mutations(payload[0]):
            yield [inner, *copy.deepcopy(payload[1:])]
        for value in ODD_VALUES:
            yield [value]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_valid_example(kind):
    assert problems(kind, VALID[kind]) == []
    validate(kind, VALID[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_compiled_check_agrees_with_jsonschema_on_every_mutation(kind):
    checked = rejected = 0
    for payload in _mutations(VALID[kind]):
        expected = _jsonschema_accepts(kind, payload)
        assert (problems(kind, payload) == []) == expected, (kind, payload)
        checked += 1
        rejected += not expected
    assert rejected > 10 and checked > rejected  # the mutations reach both answers


@pytest.mark.parametrize("field", ["symbol", "size", "timestamp"])
def test_a_trailing_newline_is_refused(field):
    """JSON Schema's `$` is ECMA-262's: it does not match before a final newline (Python's
    `$` does, so jsonschema's own check lets "BTCUSDT\\n" through)."""
    payload = {**VALID["signal"], field: VALID["signal"][field] + "\n"}
    with pytest.raises(PayloadError) as raised:
        validate("signal", payload)
    assert f"{field}={payload[field]!r}" in str(raised.value)


def test_rejection_names_each_field_and_value():
    payload = {**VALID["order"], "size": "0", "side": "HOLD"}
    with pytest.raises(PayloadError) as raised:
        validate("order", payload)
    assert raised.value.kind == "order"
    assert raised.value.problems[0].startswith("side='HOLD': ")
    assert raised.value.problems[1].startswith("size='0': ")
    assert str(raised.value).startswith("invalid order payload: side='HOLD'")


def test_a_non_object_payload_is_refused():
    with pytest.raises(PayloadError, match=r"invalid stage_message payload: \(payload\)=None"):
        validate("stage_message", None)


def test_unknown_kind_is_a_key_error():
    with pytest.raises(KeyError, match="unknown payload kind 'fill'"):
        validate("fill", {})
