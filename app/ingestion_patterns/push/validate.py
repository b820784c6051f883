"""The push pattern's checks: a claimed inbox batch split into rows to land and rejects with reasons.

Pure Python, no I/O: ``split_batch`` parses each payload by the edge's own rule (``interchange_json``:
the receiver refuses with a 400 what it refuses, but the inbox may hold payloads accepted before that
rule) and validates it against the source's rules (``BatchRules``: required top-level fields, an
ISO 8601 ``timestamp``). What lands is the parsed value written again as compact JSON, so a duplicate
key lands once (the last one wins, as the edge reads it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import orjson
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator

from .. import interchange_json
from .inbox import InboxRecord
from .landing import WebhookReject, WebhookRow
from .source import FieldFrom

_SHOWN = 200  # characters of an offending value quoted in a reason


class BatchRules(Protocol):
    """What validation needs of a run's rules (``assets.BatchRules``)."""

    @property
    def validate_schema(self) -> bool: ...

    @property
    def required_fields(self) -> list[str]: ...

    @property
    def event_type(self) -> FieldFrom | None: ...

    @property
    def payload_schema(self) -> Validator | None: ...


def validate_payload(body: bytes, config: BatchRules) -> tuple[dict | None, str | None]:
    """The parsed payload, or None and the reason it is rejected."""
    try:
        payload = interchange_json.loads(body)
    except interchange_json.NotInterchangeJson as exc:
        return None, str(exc)
    if not isinstance(payload, dict):
        return None, f"payload is a JSON {_json_type(payload)}, not an object"
    if not config.validate_schema:
        return payload, None
    missing = [name for name in config.required_fields if name not in payload]
    if missing:
        return None, f"missing required field(s): {', '.join(missing)}"
    if "timestamp" in payload:
        timestamp = payload["timestamp"]
        if isinstance(timestamp, (dict, list)):  # str() of a deeply nested value would recurse too far
            return None, f"timestamp is not ISO 8601: a JSON {_json_type(timestamp)}"
        try:
            datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
        except ValueError:
            return None, f"timestamp is not ISO 8601: {_shown(timestamp)}"
    if config.payload_schema is not None and (error := best_match(config.payload_schema.iter_errors(payload))):
        where = error.json_path if error.path else "the payload"
        return None, f"does not match the source's JSON Schema at {where}: {_clipped(error.message)}"
    return payload, None


def _clipped(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def compact_json(value: Any) -> str:
    """``value`` as compact JSON text: ``interchange_json.dumps``, or, for values nested deeper than
    orjson writes (254 levels; the edge reads up to 1,024), the same text built without recursion."""
    try:
        return interchange_json.dumps(value)
    except orjson.JSONEncodeError:
        return _compact_json_deep(value)


def _compact_json_deep(value: Any) -> str:
    """Compact JSON of ``value`` with an explicit stack; every scalar and key is written by orjson,
    so the text is exactly what orjson would write."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item.text)
        elif isinstance(item, dict):
            out.append("{")
            parts: list[Any] = []
            for index, (key, child) in enumerate(item.items()):
                parts.append(_Text(("," if index else "") + orjson.dumps(key).decode() + ":"))
                parts.append(child)
            parts.append(_Text("}"))
            stack.extend(reversed(parts))
        elif isinstance(item, list):
            out.append("[")
            parts = []
            for index, child in enumerate(item):
                if index:
                    parts.append(_Text(","))
                parts.append(child)
            parts.append(_Text("]"))
            stack.extend(reversed(parts))
        else:
            out.append(orjson.dumps(item).decode())
    return "".join(out)


class _Text:
    """Literal JSON punctuation on ``_compact_json_deep``'s stack."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _event_type(payload: dict, headers: dict[str, str]) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("x-github-event") or payload.get("event_type") or payload.get("type")
    if value is None:
        return None
    return compact_json(value) if isinstance(value, (dict, list)) else str(value)


def split_batch(records: list[InboxRecord], config: BatchRules) -> tuple[list[WebhookRow], list[WebhookReject]]:
    """Validate a claimed batch into rows to land and rejects to keep."""
    rows: list[WebhookRow] = []
    rejects: list[WebhookReject] = []
    for record in records:
        payload, reason = validate_payload(record.body, config)
        headers = None
        if payload is not None:
            try:
                headers = interchange_json.dumps(record.headers)
            except orjson.JSONEncodeError as exc:  # e.g. a header decoded with a lone surrogate
                payload, reason = None, f"headers are not interchange JSON: {exc}"
        if payload is None or headers is None:
            assert reason is not None  # validate_payload gives every None its reason
            rejects.append(
                WebhookReject(record.source_id, record.event_id, record.body, reason, record.seq, record.received_at)
            )
            continue
        rows.append(
            WebhookRow(
                source_id=record.source_id,
                event_id=record.event_id,
                event_type=(
                    config.event_type.read(record.headers, payload)
                    if config.event_type is not None
                    else _event_type(payload, record.headers)
                ),
                payload=compact_json(payload),
                headers=headers,
                inbox_seq=record.seq,
                received_at=record.received_at,
            )
        )
    return rows, rejects
