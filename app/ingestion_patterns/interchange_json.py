"""The one JSON rule of every edge: a payload must be interchange JSON (RFC 8259 in UTF-8, as I-JSON, RFC 7493).

What Python's ``json`` accepts but DuckDB, Arrow or another consumer may refuse is refused here, with a
reason, before anything is acknowledged or landed:
- not UTF-8;
- ``NaN``, ``Infinity`` and numbers too large for a double (``1e999``): they have no JSON value;
- lone surrogates (``"\\ud800"``): they cannot be encoded as UTF-8;
- nesting deeper than 1,024 levels.
An integer past 64 bits is read as a double, as I-JSON says consumers will.
Duplicate keys are accepted, and the last one wins, as in Python, JavaScript and orjson; the parsed
value, not the raw text, is what lands, so every consumer sees one key (docs/architecture.md).
orjson implements exactly these rules, in Rust, several times faster than ``json``.
"""

from __future__ import annotations

from typing import Any

import orjson


class NotInterchangeJson(ValueError):
    """The bytes are not interchange JSON; the message says why, for a 400 or a reject row."""


def loads(body: bytes) -> Any:
    """``body`` parsed, or ``NotInterchangeJson`` with the reason."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise NotInterchangeJson("not UTF-8 encoded JSON") from None
        raise NotInterchangeJson(f"malformed JSON: {error}") from None


def dumps(value: Any) -> str:
    """Compact JSON text of a parsed value (what lands)."""
    return orjson.dumps(value).decode()
