"""Send real webhooks over HTTP, optionally signed: the core of ``ingest simulate-webhooks``.

``send_webhooks`` is also what ``ingest demo`` and the tests call. Every request has its own event
id; the summary lists which ids the receiver accepted (202), called duplicates (200) or refused,
and which never got an answer (connection refused or reset). With ``bad_ratio`` a share of the
events are valid JSON objects that break the pipeline's schema (no ``data``, or a timestamp that is
not ISO 8601): the receiver accepts them and the Dagster asset must put them in webhook_rejects.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp

from ingestion_patterns.push.receiver.signatures import github_signature_header, standard_signature_headers

Scheme = Literal["standard", "github"]


@dataclass(frozen=True)
class SendResult:
    event_id: str
    status: int | None  # None: no HTTP answer
    reason: str  # the receiver's status/reason text, or the transport error

    @property
    def outcome(self) -> str:
        if self.status == 202:
            return "accepted"
        if self.status == 200:
            return "duplicate"
        return "failed" if self.status is None else "rejected"


@dataclass
class SendSummary:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[SendResult] = field(default_factory=list)  # 4xx/5xx with the reason
    failed: list[SendResult] = field(default_factory=list)  # no answer at all
    schema_invalid: list[str] = field(default_factory=list)  # ids sent breaking the schema on purpose
    elapsed_seconds: float = 0.0

    def describe(self) -> str:
        text = (
            f"{len(self.accepted)} accepted, {len(self.duplicates)} duplicate, {len(self.rejected)} rejected, "
            f"{len(self.failed)} unanswered"
        )
        if self.schema_invalid:
            text += f" ({len(self.schema_invalid)} sent schema-invalid on purpose)"
        return text

    @property
    def sent(self) -> int:
        return len(self.accepted) + len(self.duplicates) + len(self.rejected) + len(self.failed)

    def add(self, result: SendResult) -> None:
        if result.outcome == "accepted":
            self.accepted.append(result.event_id)
        elif result.outcome == "duplicate":
            self.duplicates.append(result.event_id)
        elif result.outcome == "rejected":
            self.rejected.append(result)
        else:
            self.failed.append(result)


def make_event(event_id: str | None = None, *, schema_invalid: bool = False) -> dict[str, Any]:
    """A sample event in the reference example's shape: id, timestamp, data.

    ``schema_invalid``: still a JSON object the receiver accepts, but without ``data`` or with a
    timestamp that is not ISO 8601 (alternating by id), for the pipeline to reject.
    """
    event_id = event_id or f"evt-{uuid.uuid4().hex}"
    event = {
        "id": event_id,
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {
            "order_id": random.randint(1, 10**6),
            "amount": round(random.uniform(1, 500), 2),
            "currency": random.choice(["EUR", "USD", "GBP"]),
        },
    }
    if schema_invalid:
        if zlib.crc32(event_id.encode()) % 2:
            del event["data"]
        else:
            event["timestamp"] = "yesterday at noon"
    return event


def spread(count: int, ratio: float) -> set[int]:
    """round(count * ratio) positions out of ``count``, evenly spread (deterministic)."""
    if ratio <= 0:
        return set()
    return {i for i in range(count) if int((i + 1) * ratio) > int(i * ratio)}


def request_headers(event: dict[str, Any], body: bytes, *, secret: str | None, scheme: Scheme) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "webhook-id": event["id"]}
    if secret and scheme == "standard":
        headers.update(standard_signature_headers(secret, event["id"], body))
    elif secret and scheme == "github":
        headers.update({"X-GitHub-Delivery": event["id"], "X-GitHub-Event": "simulated"})
        del headers["webhook-id"]
        headers.update(github_signature_header(secret, body))
    return headers


async def send_webhooks(
    url: str,
    source: str,
    count: int,
    *,
    secret: str | None = None,
    scheme: Scheme = "standard",
    concurrency: int = 8,
    event_ids: Sequence[str] | None = None,
    bad_ratio: float = 0.0,
    on_result: Callable[[SendResult], None] | None = None,
    timeout: float = 30.0,
) -> SendSummary:
    """POST ``count`` events to ``{url}/webhook/{source}`` with ``concurrency`` requests in flight.

    ``event_ids`` re-sends chosen ids (e.g. to show duplicates); otherwise each id is new.
    ``bad_ratio`` (0..1) of the events break the pipeline's schema on purpose (see module doc).
    ``on_result`` is called after every answer (progress bars, or a test that kills the receiver).
    """
    endpoint = f"{url.rstrip('/')}/webhook/{source}"
    ids = list(event_ids) if event_ids is not None else [f"evt-{uuid.uuid4().hex}" for _ in range(count)]
    if not 0 <= bad_ratio <= 1:
        raise ValueError("bad_ratio must be between 0 and 1")
    summary = SendSummary()
    invalid_positions = spread(len(ids), bad_ratio)
    summary.schema_invalid = [event_id for i, event_id in enumerate(ids) if i in invalid_positions]
    invalid = set(summary.schema_invalid)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for event_id in ids:
        queue.put_nowait(event_id)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def sender(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            event_id = queue.get_nowait()
            event = make_event(event_id, schema_invalid=event_id in invalid)
            body = json.dumps(event).encode()
            try:
                async with session.post(
                    endpoint, data=body, headers=request_headers(event, body, secret=secret, scheme=scheme)
                ) as response:
                    text = await response.text()
                    result = SendResult(event_id, response.status, _reason(text, response.reason))
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                result = SendResult(event_id, None, f"{type(error).__name__}: {error}")
            summary.add(result)
            if on_result is not None:
                on_result(result)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        await asyncio.gather(*(sender(session) for _ in range(max(1, min(concurrency, len(ids))))))
    summary.elapsed_seconds = loop.time() - started
    return summary


def _reason(text: str, fallback: str | None) -> str:
    try:
        document = json.loads(text)
    except ValueError:
        return text[:200] or (fallback or "")
    if isinstance(document, dict):
        return str(document.get("reason") or document.get("status") or fallback or "")
    return fallback or ""
