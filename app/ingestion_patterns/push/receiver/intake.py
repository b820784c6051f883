"""Pure checks on an incoming webhook request: media type, JSON object, event id, kept headers.

Each failure is a ``Rejection`` carrying the HTTP status, a short metric label and the reason the
sender reads; nothing here does I/O, so it is all unit-tested directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ... import interchange_json
from ...settings import SOURCE_ID_PATTERN
from ..inbox import KEPT_HEADERS

MAX_EVENT_ID_LENGTH = 256


class Rejection(Exception):
    """A request the receiver refuses: ``status`` and ``reason`` go to the sender, ``code`` to metrics."""

    def __init__(self, status: int, code: str, reason: str, headers: Mapping[str, str] | None = None):
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.headers = dict(headers or {})


def check_source_id(source_id: str) -> str:
    if not SOURCE_ID_PATTERN.match(source_id):
        raise Rejection(400, "bad_source_id", f"source_id must match [A-Za-z0-9_-]{{1,64}}, got {source_id[:80]!r}")
    return source_id


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or a ``+json`` type (e.g. application/vnd.github+json); parameters ignored."""
    if content_type == "application/json":  # what nearly every sender sends: no parsing
        return True
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def check_content_type(content_type: str | None) -> None:
    if not is_json_media_type(content_type):
        got = repr(content_type) if content_type else "none"
        raise Rejection(415, "unsupported_media_type", f"Content-Type must be application/json, got {got}")


def too_large(max_body_bytes: int) -> Rejection:
    return Rejection(413, "too_large", f"body is larger than the limit of {max_body_bytes} bytes")


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 saying what is wrong with it (interchange JSON only)."""
    if not body:
        raise Rejection(400, "malformed_json", "body is empty; expected a JSON object")
    try:
        payload = interchange_json.loads(body)
    except interchange_json.NotInterchangeJson as error:
        raise Rejection(400, "malformed_json", str(error)) from None
    if not isinstance(payload, dict):
        raise Rejection(400, "not_an_object", f"body must be a JSON object, got {type(payload).__name__}")
    return payload


def event_id_for(headers: Mapping[str, str], payload: Mapping[str, Any]) -> str:
    """The sender's id for this event: webhook-id, else X-GitHub-Delivery, else X-Shopify-Webhook-Id,
    else payload "id" (Stripe's and Slack's event ids are there), else new.

    ``headers`` must look names up case-insensitively (aiohttp's request headers do).
    """
    for name in ("webhook-id", "X-GitHub-Delivery", "X-Shopify-Webhook-Id"):
        if value := headers.get(name, "").strip():
            return _checked(value, name)
    payload_id = payload.get("id")
    if isinstance(payload_id, str) and payload_id.strip():
        return _checked(payload_id.strip(), 'payload "id"')
    if isinstance(payload_id, (int, float)) and not isinstance(payload_id, bool):
        return _checked(str(payload_id), 'payload "id"')
    return str(uuid.uuid4())


def _checked(event_id: str, where: str) -> str:
    if len(event_id) > MAX_EVENT_ID_LENGTH:
        raise Rejection(400, "bad_event_id", f"{where} is longer than {MAX_EVENT_ID_LENGTH} characters")
    return event_id


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers stored with the body (lower-case names); the rest are transport detail."""
    return {name: value for name in KEPT_HEADERS if (value := headers.get(name)) is not None}  # one lookup each
