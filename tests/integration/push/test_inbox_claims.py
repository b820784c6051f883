"""Claims are leases, identical on both backends: concurrent claimers never share a row, a lease that
runs out gives its rows back, ``mark_done`` marks only the holder's rows, ``peek`` changes nothing."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ingestion_patterns.push.inbox import NewWebhook, open_inbox

pytestmark = pytest.mark.integration


def hook(source: str, event_id: str) -> NewWebhook:
    return NewWebhook(source, event_id, b'{"a": 1}', {"webhook-id": event_id})


async def fill(inbox, source: str, count: int) -> list[int]:
    results = await asyncio.gather(*(inbox.put(hook(source, f"e{i}")) for i in range(count)))
    return sorted(result.seq for result in results)


def ids(records) -> list[str]:
    return [record.event_id for record in records]


# A claimer of its own: claim, mark done, until a claim comes back empty; prints the seqs it got.
# It waits for the go file, so both processes claim at the same time.
CLAIMER = """
import asyncio, json, sys, time
from pathlib import Path
from ingestion_patterns.push.inbox import open_inbox

url, owner, ready, go = sys.argv[1:]

async def main():
    got = []
    async with open_inbox(url) as inbox:
        Path(ready).touch()
        while not Path(go).exists():
            time.sleep(0.005)
        while records := await inbox.claim("s", 7, owner=owner):
            seqs = [record.seq for record in records]
            got += seqs
            await inbox.mark_done("s", seqs, owner=owner)
    print(json.dumps(got))

asyncio.run(main())
"""


def test_two_processes_claiming_at_once_get_every_row_exactly_once(inbox_url, tmp_path):
    async def setup():
        async with open_inbox(inbox_url) as inbox:
            await fill(inbox, "t", 5)  # another source's rows are nobody's business here
            return await fill(inbox, "s", 600)

    seqs = asyncio.run(setup())
    go = tmp_path / "go"
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, inbox_url, f"claimer-{n}", str(tmp_path / f"ready-{n}"), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{n}").exists() for n in range(2)):
        assert time.monotonic() < deadline and all(c.poll() is None for c in claimers), [
            c.communicate() for c in claimers if c.poll() is not None
        ]
        time.sleep(0.01)
    go.touch()
    outputs = [claimer.communicate(timeout=120) for claimer in claimers]
    assert all(claimer.returncode == 0 for claimer in claimers), outputs
    got = [json.loads(out) for out, _ in outputs]

    assert all(got), f"both claimers must have got rows to prove anything: {[len(g) for g in got]}"
    assert not set(got[0]) & set(got[1]), "a row was claimed by both"
    assert sorted(got[0] + got[1]) == seqs, "every row exactly once"

    async def left():
        async with open_inbox(inbox_url) as inbox:
            return (await inbox.pending("s")).count, (await inbox.pending("t")).count

    assert asyncio.run(left()) == (0, 5)


def test_concurrent_claims_in_one_process_share_no_row(inbox_url):
    """Tasks on one inbox object (one default owner) and on a second one: still disjoint."""

    async def scenario():
        async with open_inbox(inbox_url) as first, open_inbox(inbox_url) as second:
            seqs = await fill(first, "s", 300)

            async def claimer(inbox) -> list[int]:
                got: list[int] = []
                while records := await inbox.claim("s", 5):
                    got += [record.seq for record in records]
                return got

            results = await asyncio.gather(*(claimer(inbox) for inbox in (first, first, first, second, second)))
            return seqs, results

    seqs, results = asyncio.run(scenario())
    everything = [seq for got in results for seq in got]
    assert sorted(everything) == seqs and len(set(everything)) == len(everything)


def test_an_expired_lease_is_claimable_again_and_mark_done_marks_only_the_holders_rows(inbox_url):
    async def scenario():
        async with open_inbox(inbox_url) as inbox:
            await fill(inbox, "s", 5)
            a = await inbox.claim("s", 3, owner="A", lease_seconds=0.5)
            b = await inbox.claim("s", 10, owner="B")
            await inbox.mark_done("s", [r.seq for r in a], owner="B")  # not B's rows: nothing happens
            pending_while_leased = (await inbox.pending("s")).count
            nothing_yet = await inbox.claim("s", 10, owner="C")
            await asyncio.sleep(0.8)
            c = await inbox.claim("s", 10, owner="C")
            await inbox.mark_done("s", [r.seq for r in a], owner="A")  # A's lease ran out, C holds them now
            after_late_a = (await inbox.pending("s")).count
            await inbox.mark_done("s", [r.seq for r in c], owner="C")
            after_c = (await inbox.pending("s")).count
            return a, b, pending_while_leased, nothing_yet, c, after_late_a, after_c

    a, b, pending_while_leased, nothing_yet, c, after_late_a, after_c = asyncio.run(scenario())
    assert ids(a) == ["e0", "e1", "e2"] and ids(b) == ["e3", "e4"]
    assert pending_while_leased == 5, "leased rows are still pending"
    assert nothing_yet == []
    assert ids(c) == ["e0", "e1", "e2"], "the expired lease's rows come back, oldest first"
    assert after_late_a == 5
    assert after_c == 2


def test_a_renewed_lease_holds_and_a_released_one_is_free_at_once(inbox_url):
    async def scenario():
        async with open_inbox(inbox_url) as inbox:
            await fill(inbox, "s", 3)
            a = await inbox.claim("s", 10, owner="A", lease_seconds=0.5)
            seqs = [r.seq for r in a]
            renewed = await inbox.renew("s", seqs, owner="A", lease_seconds=600)
            renewed_by_other = await inbox.renew("s", seqs, owner="B", lease_seconds=600)
            await asyncio.sleep(0.8)
            still_held = await inbox.claim("s", 10, owner="B")
            leases = await inbox.leases("s")
            released = await inbox.release("s", "A")
            leases_after = await inbox.leases("s")
            b = await inbox.claim("s", 10, owner="B")
            return a, renewed, renewed_by_other, still_held, leases, released, leases_after, b

    a, renewed, renewed_by_other, still_held, leases, released, leases_after, b = asyncio.run(scenario())
    assert len(a) == 3 and renewed == 3 and renewed_by_other == 0
    assert still_held == []
    [lease] = leases
    assert (lease.owner, lease.count) == ("A", 3)
    assert lease.until > datetime.now(UTC) + timedelta(seconds=500)
    assert released == 3 and leases_after == []
    assert ids(b) == ["e0", "e1", "e2"]


def test_peek_changes_nothing(inbox_url):
    async def scenario():
        async with open_inbox(inbox_url) as inbox:
            await fill(inbox, "s", 4)
            first = await inbox.peek("s", 2)
            second = await inbox.peek("s", 2)
            leases_after_peeks = await inbox.leases("s")
            claimed = await inbox.claim("s", 3, owner="A")
            peek_while_leased = await inbox.peek("s", 10)
            summary = await inbox.pending("s")
            sources = await inbox.pending_sources()
            return first, second, leases_after_peeks, claimed, peek_while_leased, summary, sources

    first, second, leases_after_peeks, claimed, peek_while_leased, summary, sources = asyncio.run(scenario())
    assert ids(first) == ids(second) == ["e0", "e1"]
    assert leases_after_peeks == []
    assert ids(claimed) == ["e0", "e1", "e2"], "a peek leases nothing"
    assert ids(peek_while_leased) == ["e0", "e1", "e2", "e3"], "peek shows leased rows too"
    assert summary.count == 4 and [(s.source_id, s.count) for s in sources] == [("s", 4)]


# The inbox tables as they were before claims took leases.
_OLD_SQLITE = (
    "CREATE TABLE webhook_inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, source_id TEXT NOT NULL,"
    " event_id TEXT NOT NULL, body BLOB NOT NULL, headers TEXT NOT NULL, received_at REAL NOT NULL,"
    " done_at REAL, UNIQUE (source_id, event_id))",
    "INSERT INTO webhook_inbox (source_id, event_id, body, headers, received_at)"
    " VALUES ('s', 'old', X'7B7D', '{}', 1767225600)",
)
_OLD_POSTGRES = (
    "CREATE TABLE webhook_inbox (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, source_id text NOT NULL,"
    " event_id text NOT NULL, body bytea NOT NULL, headers jsonb NOT NULL, received_at timestamptz NOT NULL,"
    " done_at timestamptz, UNIQUE (source_id, event_id))",
    "INSERT INTO webhook_inbox (source_id, event_id, body, headers, received_at)"
    " VALUES ('s', 'old', '\\x7b7d', '{}', '2026-01-01T00:00:00Z')",
)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_inbox_made_before_leases_gets_the_lease_columns(make_inbox_url, backend):
    url = make_inbox_url(backend)
    if backend == "sqlite":
        with sqlite3.connect(Path(url.removeprefix("sqlite:///"))) as conn:
            for statement in _OLD_SQLITE:
                conn.execute(statement)
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in _OLD_POSTGRES:
                conn.execute(statement)

    async def scenario():
        async with open_inbox(url) as inbox:
            claimed = await inbox.claim("s", 10, owner="A")
            again = await inbox.claim("s", 10, owner="B")
            await inbox.mark_done("s", [r.seq for r in claimed], owner="A")
        async with open_inbox(url) as inbox:  # a second open finds the columns in place
            return claimed, again, (await inbox.pending("s")).count, (await inbox.put(hook("s", "new"))).accepted

    claimed, again, pending, accepted = asyncio.run(scenario())
    assert ids(claimed) == ["old"] and claimed[0].body == b"{}" and again == []
    assert pending == 0 and accepted
