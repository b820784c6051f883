"""kill -9 the receiver under 32 concurrent senders: every id that got a 202 is in the inbox, once."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

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


def stop_writer_processes(inbox_path: str) -> list[int]:
    """SIGSTOP the SQLite writer processes (python -m ingestion_patterns.push.inbox.sqlite) of
    ``inbox_path``; their pids."""
    stopped = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:  # exited meanwhile
            continue
        if b"ingestion_patterns.push.inbox.sqlite" in argv and inbox_path.encode() in argv:
            os.kill(int(pid), signal.SIGSTOP)
            stopped.append(int(pid))
    return stopped


def test_killing_the_writer_process_loses_nothing_and_the_receiver_carries_on(start_receiver, make_inbox_url):
    """kill -9 only the process that commits the puts, under 32 senders: the requests waiting on it
    get a 503, every 202 is stored once, and later requests are stored by a new writer process with
    no restart of the receiver."""
    inbox_url = make_inbox_url("sqlite")
    receiver = start_receiver(inbox_url, ready_path="/ready")
    accepted_so_far, killed = 0, 0

    def kill(pids: list[int]) -> None:
        nonlocal killed
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        killed = len(pids)

    def kill_midway(result: SendResult) -> None:
        nonlocal accepted_so_far
        accepted_so_far += result.status == 202
        if accepted_so_far == KILL_AFTER_ACCEPTED:
            # Stopped now, killed half a second later: the senders' next requests are waiting on it
            # when it dies. (The client, not the receiver, is the bottleneck here, so at any given
            # moment the receiver may have answered everything, and a bare kill would test nothing.)
            stopped = stop_writer_processes(inbox_url.removeprefix("sqlite:///"))
            asyncio.get_running_loop().call_later(0.5, kill, stopped)

    summary = asyncio.run(
        send_webhooks(receiver.url, "crash", TOTAL, concurrency=SENDERS, on_result=kill_midway, timeout=10)
    )
    assert killed == 1
    unavailable = [r for r in summary.rejected if r.status == 503]
    assert unavailable, "no request was waiting on the writer process when it was killed; nothing was tested"
    assert summary.rejected == unavailable and not summary.failed and not summary.duplicates
    assert len(summary.accepted) > KILL_AFTER_ACCEPTED + SENDERS  # the receiver carried on, unrestarted
    assert receiver.process.running

    sent_ids = summary.accepted + [r.event_id for r in unavailable]
    stored = asyncio.run(stored_event_ids(inbox_url, "crash"))
    assert not set(summary.accepted) - set(stored)
    assert max(stored.values()) == 1

    # The senders retry the 503s: a row the killed process had committed is a duplicate, the rest new.
    retry = asyncio.run(send_webhooks(receiver.url, "crash", 0, event_ids=sent_ids, concurrency=SENDERS))
    assert not retry.failed and not retry.rejected
    assert set(retry.duplicates) >= set(summary.accepted)
    final = asyncio.run(stored_event_ids(inbox_url, "crash"))
    assert sorted(final) == sorted(sent_ids) and max(final.values()) == 1
