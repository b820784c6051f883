"""Inbox semantics, identical on both backends: the contract the receiver and the Dagster sensor rely on."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingestion_patterns.push.inbox import InboxUnavailable, NewWebhook, open_inbox

pytestmark = pytest.mark.integration


def hook(source: str, event_id: str, body: bytes = b'{"a": 1}', at: datetime | None = None) -> NewWebhook:
    headers = {"content-type": "application/json", "webhook-id": event_id}
    return NewWebhook(source, event_id, body, headers, (at or datetime.now(UTC)).timestamp())


def run(coro):
    return asyncio.run(coro)


def test_put_dedups_and_keeps_body_headers_and_order(inbox_url):
    async def scenario():
        async with open_inbox(inbox_url) as inbox:
            first = await inbox.put(hook("s", "e1", b'{"x": "\xc3\xa9"}'))
            second = await inbox.put(hook("s", "e2"))
            again = await inbox.put(hook("s", "e1", b'{"other": true}'))
            other_source = await inbox.put(hook("t", "e1"))
            records = await inbox.claim("s", 10)
            return first, second, again, other_source, records

    first, second, again, other_source, records = run(scenario())
    assert first.accepted and second.accepted and other_source.accepted
    assert (again.accepted, again.event_id, again.seq) == (False, "e1", None)
    assert first.seq < second.seq < other_source.seq
    assert [(r.seq, r.event_id) for r in records] == [(first.seq, "e1"), (second.seq, "e2")]
    assert records[0].body == b'{"x": "\xc3\xa9"}'  # raw bytes, the first delivery's
    assert records[0].headers == {"content-type": "application/json", "webhook-id": "e1"}
    assert records[0].received_at.tzinfo is not None


def test_pending_claim_and_mark_done(inbox_url):
    old = datetime.now(UTC) - timedelta(minutes=5)

    async def scenario():
        async with open_inbox(inbox_url) as inbox:
            empty = await inbox.pending("s")
            results = [await inbox.put(hook("s", f"e{i}", at=old + timedelta(seconds=i))) for i in range(5)]
            await inbox.put(hook("t", "x"))
            before = await inbox.pending("s")
            sources = await inbox.pending_sources()
            batch = await inbox.claim("s", 3)
            await inbox.mark_done("s", [r.seq for r in batch])
            await inbox.mark_done("s", [r.seq for r in batch])  # a replay is harmless
            after = await inbox.pending("s")
            rest = await inbox.claim("s", 10)
            resent = await inbox.put(hook("s", "e0"))  # done rows keep their id reserved
            await inbox.mark_done("s", [r.seq for r in rest] + [10**9])
            drained = await inbox.pending("s")
            sources_after = await inbox.pending_sources()
            return empty, results, before, sources, batch, after, rest, resent, drained, sources_after

    empty, results, before, sources, batch, after, rest, resent, drained, sources_after = run(scenario())
    assert (empty.count, empty.oldest_received_at, empty.max_seq, empty.oldest_age_seconds()) == (0, None, None, None)
    assert before.count == 5 and before.max_seq == results[-1].seq
    assert abs((before.oldest_received_at - old).total_seconds()) < 0.01
    assert 295 < before.oldest_age_seconds() < 400
    assert [(s.source_id, s.count) for s in sources] == [("s", 5), ("t", 1)]
    assert [r.event_id for r in batch] == ["e0", "e1", "e2"]
    assert after.count == 2 and [r.event_id for r in rest] == ["e3", "e4"]
    assert not resent.accepted
    assert drained.count == 0
    assert [(s.source_id, s.count) for s in sources_after] == [("t", 1)]


def test_mark_done_only_touches_its_own_source(inbox_url):
    async def scenario():
        async with open_inbox(inbox_url) as inbox:
            a = await inbox.put(hook("a", "1"))
            await inbox.put(hook("b", "1"))
            await inbox.mark_done("b", [a.seq])  # a's seq under the wrong source: nothing changes
            return (await inbox.pending("a")).count, (await inbox.pending("b")).count

    assert run(scenario()) == (1, 1)


def test_concurrent_puts_share_commits_and_each_id_lands_once(inbox_url):
    """200 concurrent puts, 50 of them repeats: 150 rows, 50 duplicates, seqs unique."""

    async def scenario():
        async with open_inbox(inbox_url) as inbox:
            items = [hook("s", f"e{i % 150}") for i in range(200)]
            results = await asyncio.gather(*(inbox.put(item) for item in items))
            return results, await inbox.claim("s", 1000)

    results, records = run(scenario())
    accepted = [r for r in results if r.accepted]
    assert len(accepted) == 150 and len(results) - len(accepted) == 50
    assert len({r.seq for r in accepted}) == 150
    assert sorted(r.event_id for r in records) == sorted(f"e{i}" for i in range(150))


def test_each_accepted_seq_is_its_rows_in_new_and_mixed_batches(inbox_url):
    """A group commit of new ids only (SQLite: seqs from lastrowid, no RETURNING), then one that mixes
    held ids with new ones (SQLite: rolled back and redone with RETURNING), then new ones again:
    every accepted put's seq is the seq of the row stored for its id, and every held id is a duplicate."""

    async def scenario():
        async with open_inbox(inbox_url) as inbox:
            new = await asyncio.gather(*(inbox.put(hook("s", f"a{i}")) for i in range(40)))
            mixed = await asyncio.gather(*(inbox.put(hook("s", f"{'a' if i % 3 else 'b'}{i}")) for i in range(40)))
            again = await asyncio.gather(*(inbox.put(hook("s", f"c{i}")) for i in range(40)))
            return new + mixed + again, await inbox.claim("s", 1000)

    results, records = run(scenario())
    stored = {record.event_id: record.seq for record in records}
    accepted = {r.event_id: r.seq for r in results if r.accepted}
    assert accepted == stored
    assert len(stored) == 40 + 14 + 40
    assert [r.event_id for r in results[40:80] if not r.accepted] == [f"a{i}" for i in range(40) if i % 3]


def test_postgres_group_commit_uses_fewer_transactions_than_puts(make_inbox_url):
    url = make_inbox_url("postgres")

    def commits() -> int:
        with psycopg.connect(url) as conn:
            query = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            (count,) = conn.execute(query).fetchall()[0]
            return count

    async def puts(items: list[NewWebhook]) -> None:
        # Closing the inbox ends its server backends, which flushes their statistics.
        async with open_inbox(url) as inbox:
            await asyncio.gather(*(inbox.put(item) for item in items))

    run(puts([hook("s", "warm-up")]))  # creates the table
    before = commits()
    run(puts([hook("s", f"e{i}") for i in range(500)]))
    spent = commits() - before
    # 500 puts, one transaction each, would be >= 500; group commit needs a handful (plus a few
    # for connecting and the schema check).
    assert 1 <= spent < 100, f"{spent} commits for 500 puts"


def test_open_is_idempotent_and_the_schema_survives_reopening(inbox_url):
    async def scenario():
        async with open_inbox(inbox_url) as inbox:
            await inbox.open()
            await inbox.put(hook("s", "1"))
        async with open_inbox(inbox_url) as inbox:
            return (await inbox.put(hook("s", "1"))).accepted, (await inbox.pending("s")).count

    assert run(scenario()) == (False, 1)


def test_an_unreachable_store_raises_inbox_unavailable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    unreachable = [f"sqlite:///{blocker}/inbox.sqlite3", "postgresql://nobody@127.0.0.1:1/none"]

    async def scenario(url):
        inbox = open_inbox(url)
        with pytest.raises(InboxUnavailable):
            await inbox.open()
        for call in (inbox.ping(), inbox.put(hook("s", "1")), inbox.pending("s"), inbox.claim("s", 1)):
            with pytest.raises(InboxUnavailable):
                await call
        await inbox.close()

    for url in unreachable:
        run(scenario(url))


@pytest.mark.parametrize("held", [False, True], ids=["all-new", "some-held"])
def test_sqlite_batch_past_one_statement_is_one_transaction(tmp_path, held):
    """A group commit of more rows than one INSERT takes (puts made in one loop pass reach the writer
    process as one frame, one commit): one transaction of several statements. All new, each row's seq
    is its stored seq; with held ids among them (in the second statement), the whole transaction is
    undone and redone with RETURNING."""
    from ingestion_patterns.push.inbox.sqlite import _ROWS_PER_STATEMENT, SQLiteInbox

    count = _ROWS_PER_STATEMENT + 100

    async def scenario():
        async with SQLiteInbox(tmp_path / "inbox.sqlite3") as inbox:
            if held:
                await inbox.put(hook("s", f"e{count - 1}"))
            results = await asyncio.gather(*(inbox.put(hook("s", f"e{i}")) for i in range(count)))
            return results, await inbox.claim("s", 2 * count)

    results, records = run(scenario())
    stored = {record.event_id: record.seq for record in records}
    assert len(stored) == count
    assert {r.event_id: r.seq for r in results if r.accepted} == {
        event_id: seq for event_id, seq in stored.items() if not (held and event_id == f"e{count - 1}")
    }
    assert [r.event_id for r in results if not r.accepted] == ([f"e{count - 1}"] if held else [])
