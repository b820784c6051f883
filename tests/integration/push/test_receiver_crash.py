"""kill -9 the receiver under 32 concurrent senders: every id that got a 202 is in the inbox, once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from webhook_http import get

from ingestion_devtools.webhook_simulator import SendResult, send_webhooks
from ingestion_patterns.push.inbox import open_inbox

pytestmark = pytest.mark.integration

SENDERS = 32
TOTAL = 2000
KILL_AFTER_ACCEPTED = 400


async def stored_event_ids(inbox_url: str, source: str) -> Counter:
    async with open_inbox(inbox_url) as inbox:
        return Counter(record.event_id for record in await inbox.peek(source, 10 * TOTAL))


@pytest.mark.parametrize(
    "backend, workers",
    [("sqlite", 1), ("sqlite", 2), ("postgres", 1)],
    ids=["sqlite-1-worker", "sqlite-2-workers", "postgres-1-worker"],
)
def test_every_acknowledged_webhook_survives_a_kill_9(start_receiver, make_inbox_url, backend, workers):
    inbox_url = make_inbox_url(backend)
    receiver = start_receiver(inbox_url, workers=workers, ready_path="/ready")
    accepted_so_far = 0

    def kill_midway(result: SendResult) -> None:
        nonlocal accepted_so_far
        accepted_so_far += result.status == 202
        if accepted_so_far == KILL_AFTER_ACCEPTED:
            receiver.kill()  # SIGKILL to master and workers while ~32 requests are in flight

    summary = asyncio.run(
        send_webhooks(receiver.url, "crash", TOTAL, concurrency=SENDERS, on_result=kill_midway, timeout=10)
    )
    sent_ids = summary.accepted + [r.event_id for r in summary.failed + summary.rejected] + summary.duplicates
    assert len(summary.accepted) >= KILL_AFTER_ACCEPTED
    assert summary.failed, "the kill happened after every request was answered; nothing was tested"
    assert not summary.duplicates and not summary.rejected

    receiver.restart()
    stored = asyncio.run(stored_event_ids(inbox_url, "crash"))
    missing = set(summary.accepted) - set(stored)
    assert not missing, f"{len(missing)} acknowledged webhooks lost, e.g. {sorted(missing)[:3]}"
    assert max(stored.values()) == 1
    assert set(stored) <= set(sent_ids)

    # The senders retry everything that got no answer: each id ends up stored exactly once.
    retry = asyncio.run(send_webhooks(receiver.url, "crash", 0, event_ids=sent_ids, concurrency=SENDERS))
    assert not retry.failed and not retry.rejected
    assert set(retry.duplicates) >= set(summary.accepted)  # the 202s are remembered as duplicates
    final = asyncio.run(stored_event_ids(inbox_url, "crash"))
    assert sorted(final) == sorted(sent_ids) and max(final.values()) == 1
    assert get(f"{receiver.url}/webhook/crash/pending").json["pending"] == len(sent_ids)
