"""The push pattern's checks: a claimed inbox batch split into rows to land and rejects with reasons.

Pure Python, no I/O: ``split_batch`` parses and validates each payload against the source's rules
(``BatchRules``: required top-level fields, an ISO 8601 ``timestamp``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Protocol

from .inbox import InboxRecord
from .landing import WebhookReject, WebhookRow


class BatchRules(Protocol):
    """What validation needs of a run's config (``assets.WebhookBatchConfig``)."""

    validate_schema: bool
    required_fields: list[str]


def validate_payload(body: bytes, config: BatchRules) -> tuple[dict | None, str | None]:
    """The parsed payload, or None and the reason it is rejected."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"malformed JSON: {exc}"
    if not isinstance(payload, dict):
        return None, f"payload is a JSON {type(payload).__name__}, not an object"
    if not config.validate_schema:
        return payload, None
    missing = [name for name in config.required_fields if name not in payload]
    if missing:
        return None, f"missing required field(s): {', '.join(missing)}"
    if "timestamp" in payload:
        try:
            datetime.fromisoformat(str(payload["timestamp"]).replace("Z", "+00:00"))
        except ValueError:
            return None, f"timestamp is not ISO 8601: {payload['timestamp']!r}"
    return payload, None


def _event_type(payload: dict, headers: dict[str, str]) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("x-github-event") or payload.get("event_type") or payload.get("type")
    return str(value) if value is not None else None


def split_batch(records: list[InboxRecord], config: BatchRules) -> tuple[list[WebhookRow], list[WebhookReject]]:
    """Validate a claimed batch into rows to land and rejects to keep."""
    rows: list[WebhookRow] = []
    rejects: list[WebhookReject] = []
    for record in records:
        payload, reason = validate_payload(record.body, config)
        if payload is None:
            assert reason is not None  # validate_payload gives every None its reason
            rejects.append(
                WebhookReject(record.source_id, record.event_id, record.body, reason, record.seq, record.received_at)
            )
            continue
        rows.append(
            WebhookRow(
                source_id=record.source_id,
                event_id=record.event_id,
                event_type=_event_type(payload, record.headers),
                payload=json.dumps(payload, separators=(",", ":")),
                headers=json.dumps(record.headers, separators=(",", ":")),
                inbox_seq=record.seq,
                received_at=record.received_at,
            )
        )
    return rows, rejects
