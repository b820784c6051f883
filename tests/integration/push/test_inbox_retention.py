"""Inbox retention, identical on both backends: ``purge_done`` deletes only the rows landed (done)
longer ago than the window, a batch per transaction; pending rows stay; an event id stays a duplicate
while its row is kept and is new once it is purged; ``sizes`` counts what is left."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import psycopg
import pytest

from ingestion_patterns.push.inbox import NewWebhook, open_inbox

pytestmark = pytest.mark.integration

DAY = 86_400.0


def hook(source: str, event_id: str, *, age_seconds: float = 0.0) -> NewWebhook:
    received = time.time() - age_seconds
    return NewWebhook(source, event_id, b'{"a": 1}', {}, received_at=received)


def backdate_done(url: str, seqs: list[int], age_seconds: float) -> None:
    """Set the rows' done_at ``age_seconds`` into the past, as if they had landed then."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.executemany(
                "UPDATE webhook_inbox SET done_at = ? WHERE seq = ?", [(time.time() - age_seconds, s) for s in seqs]
            )
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE webhook_inbox SET done_at = now() - make_interval(secs => %s) WHERE seq = ANY(%s)",
                (age_seconds, seqs),
            )


def backdate_all_done(url: str, age_seconds: float) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("UPDATE webhook_inbox SET done_at = ? WHERE done_at IS NOT NULL", (time.time() - age_seconds,))
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE webhook_inbox SET done_at = now() - make_interval(secs => %s) WHERE done_at IS NOT NULL",
                (age_seconds,),
            )


async def put_all(inbox, hooks: list[NewWebhook]) -> list[int]:
    results = await asyncio.gather(*(inbox.put(h) for h in hooks))
    assert all(result.accepted for result in results)
    return sorted(result.seq for result in results)


async def land(inbox, source: str, limit: int) -> list[int]:
    """Claim and mark done, as a landing run does; returns the seqs."""
    records = await inbox.claim(source, limit)
    seqs = [record.seq for record in records]
    await inbox.mark_done(source, seqs)
    return seqs


def test_purge_deletes_only_rows_done_before_the_window_in_batches(inbox_url):
    async def scenario():
        async with open_inbox(inbox_url) as inbox:
            # 30 old rows landed 8 days ago, 10 old rows landed just now, 5 old rows pending (2 leased),
            # 5 new rows pending.
            await put_all(inbox, [hook("s", f"old-{i}", age_seconds=9 * DAY) for i in range(45)])
            await put_all(inbox, [hook("s", f"new-{i}") for i in range(5)])
            long_done = await land(inbox, "s", 30)
            backdate_done(inbox_url, long_done, 8 * DAY)
            await land(inbox, "s", 10)
            await inbox.claim("s", 2, owner="a-live-run")
            before = await inbox.sizes()

            result = await inbox.purge_done(7 * DAY, batch_rows=7)
            after = await inbox.sizes()
            pending = await inbox.peek("s", 100)
            again = await inbox.purge_done(7 * DAY, batch_rows=7)
            return before, result, after, pending, again

    before, result, after, pending, again = asyncio.run(scenario())
    assert (before.total, before.done, before.pending) == (50, 40, 10)
    assert result.deleted == 30
    assert result.batches >= 30 // 7, "each batch is its own transaction of at most batch_rows rows"
    assert (after.total, after.done, after.pending) == (20, 10, 10)
    assert [r.event_id for r in pending] == [f"old-{i}" for i in range(40, 45)] + [f"new-{i}" for i in range(5)]
    assert again.deleted == 0
    assert after.storage_bytes and after.storage_bytes > 0


def test_an_event_id_is_a_duplicate_within_the_window_and_new_after_it(inbox_url):
    async def scenario():
        async with open_inbox(inbox_url) as inbox:
            await put_all(inbox, [hook("s", "evt-1", age_seconds=2 * DAY), hook("s", "evt-2", age_seconds=2 * DAY)])
            first, second = await land(inbox, "s", 2)
            backdate_done(inbox_url, [first], 1.5 * DAY)  # evt-1 landed 36 h ago, evt-2 just now
            within = await inbox.put(hook("s", "evt-1"))
            purged = await inbox.purge_done(DAY)
            after = await inbox.put(hook("s", "evt-1"))
            still = await inbox.put(hook("s", "evt-2"))
            return within, purged, after, still

    within, purged, after, still = asyncio.run(scenario())
    assert not within.accepted, "inside the window a re-sent id is a duplicate"
    assert purged.deleted == 1
    assert after.accepted and after.seq is not None, "after the window the id is new"
    assert not still.accepted, "evt-2 landed inside the window: still a duplicate"


def test_puts_beside_a_long_purge_are_all_committed(inbox_url):
    """The purge takes the write lock per batch only: a second inbox (a receiver's) keeps committing."""

    async def scenario():
        async with open_inbox(inbox_url) as purger, open_inbox(inbox_url) as receiver:
            for start in range(0, 6000, 1000):
                await put_all(purger, [hook("old", f"o{i}", age_seconds=9 * DAY) for i in range(start, start + 1000)])
            while await land(purger, "old", 1000):
                pass
            await asyncio.to_thread(backdate_all_done, inbox_url, 8 * DAY)
            latencies: list[float] = []

            async def send() -> list[int]:
                seqs = []
                for i in range(200):
                    started = time.perf_counter()
                    result = await receiver.put(hook("live", f"l{i}"))
                    latencies.append(time.perf_counter() - started)
                    assert result.accepted
                    seqs.append(result.seq)
                return seqs

            purge, seqs = await asyncio.gather(purger.purge_done(7 * DAY, batch_rows=500), send())
            pending = (await receiver.pending("live")).count
            return purge, seqs, pending, latencies, await receiver.sizes()

    purge, seqs, pending, latencies, sizes = asyncio.run(scenario())
    assert purge.deleted == 6000 and purge.batches >= 12
    assert len(set(seqs)) == 200 and pending == 200
    assert sizes.total == 200
    assert max(latencies) < 5, f"a put waited {max(latencies):.2f} s beside the purge"


def test_the_receiver_metrics_show_the_inbox_sizes(inbox_url, monkeypatch):
    from ingestion_patterns.push.receiver.metrics import ReceiverMetrics, read_inbox

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)

    async def scenario():
        async with open_inbox(inbox_url) as inbox:
            await put_all(inbox, [hook("s", f"e{i}") for i in range(5)])
            await land(inbox, "s", 2)
            return await read_inbox(inbox)

    pending, sizes = asyncio.run(scenario())
    body, _ = ReceiverMetrics().render(pending, sizes)
    text = body.decode()
    assert 'webhook_inbox_rows{state="done"} 2.0' in text
    assert 'webhook_inbox_rows{state="pending"} 3.0' in text
    assert 'webhook_inbox_pending{source_id="s"} 3.0' in text
    assert sizes is not None and sizes.storage_bytes
    assert f"webhook_inbox_storage_bytes {float(sizes.storage_bytes)}" in text
