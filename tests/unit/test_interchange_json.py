"""The edges' JSON rule: interchange JSON only (what every consumer, DuckDB included, can hold)."""

from __future__ import annotations

import pytest

from ingestion_patterns import interchange_json
from ingestion_patterns.push.receiver.intake import Rejection, parse_json_object


@pytest.mark.parametrize(
    "body, reason",
    [
        (b'{"a": "\\ud800"}', "surrogate"),  # legal JSON text that Python parses; DuckDB refuses it
        (b'{"a": "\\udc00 trailing"}', "surrogate"),
        (b'{"amount": 1e999}', "infinity"),
        (b'{"amount": -1e999}', "infinity"),
        (b'{"amount": NaN}', "malformed JSON"),
        (b'{"amount": Infinity}', "malformed JSON"),
        (b'{"amount": -Infinity}', "malformed JSON"),
        (b"[" * 2000 + b"]" * 2000, "malformed JSON"),
        (b'{"a": "\xed\xa0\x80"}', "UTF-8"),  # a surrogate encoded in UTF-8 bytes: not UTF-8
    ],
)
def test_what_is_not_interchange_json_is_refused_at_the_edge_with_a_reason(body, reason):
    with pytest.raises(interchange_json.NotInterchangeJson, match=reason):
        interchange_json.loads(body)
    with pytest.raises(Rejection) as error:
        parse_json_object(body)
    assert (error.value.status, error.value.code) == (400, "malformed_json")
    assert reason in error.value.reason


@pytest.mark.parametrize(
    "body, value",
    [
        (b'{"a": "\\ud83d\\ude00"}', {"a": "\U0001f600"}),  # a surrogate pair is one character
        (b'{"a": "\\u0000"}', {"a": "\x00"}),  # NUL is a character like any other
        (b'{"a": 1, "a": 2}', {"a": 2}),  # duplicate keys: the last one wins, and only it lands
        # past 64 bits an integer is read as a double, as I-JSON says consumers will (RFC 7493, 2.2)
        (b'{"n": 1e308, "i": 123456789012345678901234567890}', {"n": 1e308, "i": 1.2345678901234568e29}),
    ],
)
def test_interchange_json_is_accepted(body, value):
    assert interchange_json.loads(body) == value
    assert interchange_json.loads(interchange_json.dumps(value).encode()) == value
