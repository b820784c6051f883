"""PostgreSQL inbox (the cluster backend): a table that every receiver replica writes.

Each process has an asyncpg pool and one group-commit writer task: the batch that queued while the
previous commit was in flight goes in as ONE ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING
RETURNING`` statement, i.e. one transaction and one WAL flush (synchronous_commit=on) for all of
them. The unique (source_id, event_id) constraint makes duplicates from any replica a no-op.

A claim leases rows with ``SELECT … FOR UPDATE SKIP LOCKED`` inside the ``UPDATE`` that sets the
lease, so concurrent claims (any process, any host) skip each other's rows instead of waiting. Lease
expiries are the server's clock (``now()``), the one clock every claimer shares.

Retention (``purge_done``) deletes landed rows by ``seq`` ranges, one statement (its own short
transaction) per range: the range's rows are read by the primary key, so a batch costs the same
however large the table is, and a concurrent insert of the same event id waits for one batch at most.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg

from .base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_PURGE_BATCH_ROWS,
    GroupCommitWriter,
    InboxContextMixin,
    InboxRecord,
    InboxSizes,
    InboxUnavailable,
    Lease,
    NewWebhook,
    PendingSummary,
    PurgeResult,
    PutResult,
    headers_json,
    new_claim_owner,
    put_results,
)

T = TypeVar("T")

DDL = """
CREATE TABLE IF NOT EXISTS webhook_inbox (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_id   text        NOT NULL,
    event_id    text        NOT NULL,
    body        bytea       NOT NULL,
    headers     jsonb       NOT NULL,
    received_at timestamptz NOT NULL,
    done_at     timestamptz,
    claimed_by  text,           -- lease owner of the last claim
    claimed_until timestamptz,  -- lease expiry
    UNIQUE (source_id, event_id)
);
CREATE INDEX IF NOT EXISTS webhook_inbox_pending
    ON webhook_inbox (source_id, seq, received_at) WHERE done_at IS NULL;
"""

# Inboxes created before claims took leases. Run only when a column is missing: ALTER TABLE takes an
# ACCESS EXCLUSIVE lock even when there is nothing to add, and every open (each sensor tick) checks.
_MIGRATE = """
ALTER TABLE webhook_inbox ADD COLUMN IF NOT EXISTS claimed_by text;
ALTER TABLE webhook_inbox ADD COLUMN IF NOT EXISTS claimed_until timestamptz;
"""
_LEASE_COLUMNS_MISSING = """
SELECT count(*) < 2 FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = 'webhook_inbox'
  AND column_name IN ('claimed_by', 'claimed_until')
"""

# Several replicas may start at once; CREATE … IF NOT EXISTS is not race-free, this lock makes it so.
_DDL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('ingestion_patterns.webhook_inbox.ddl'))"

_INSERT_BATCH = """
INSERT INTO webhook_inbox (source_id, event_id, body, headers, received_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::jsonb[], $5::timestamptz[])
ON CONFLICT (source_id, event_id) DO NOTHING
RETURNING seq, source_id, event_id
"""

_SUMMARY_COLUMNS = "count(*) AS count, min(received_at) AS oldest, max(seq) AS max_seq"

_RECORD_COLUMNS = "seq, source_id, event_id, body, headers, received_at"

# READ COMMITTED re-checks a row's WHERE when it locks it, so a row another claim leased and committed
# after this statement's snapshot is dropped too; rows another claim is leasing right now are skipped.
_CLAIM = f"""
WITH picked AS (
    SELECT seq FROM webhook_inbox
    WHERE source_id = $1 AND done_at IS NULL AND (claimed_until IS NULL OR claimed_until <= now())
    ORDER BY seq LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_inbox AS inbox
SET claimed_by = $3, claimed_until = now() + make_interval(secs => $4::double precision)
FROM picked WHERE inbox.seq = picked.seq
RETURNING {", ".join(f"inbox.{name}" for name in _RECORD_COLUMNS.split(", "))}
"""

# One retention batch: the next ``$2`` rows after seq ``$1`` (by the primary key), and of those the
# ones done more than ``$3`` seconds ago deleted. ``past_window``: every row of the range came in
# after the window began, so neither it nor any later range holds a row to delete.
_PURGE = """
WITH picked AS (
    SELECT seq, received_at, done_at FROM webhook_inbox WHERE seq > $1 ORDER BY seq LIMIT $2
), gone AS (
    DELETE FROM webhook_inbox AS inbox USING picked
    WHERE inbox.seq = picked.seq AND picked.done_at < now() - make_interval(secs => $3::double precision)
    RETURNING inbox.seq
)
SELECT (SELECT max(seq) FROM picked) AS last_seq,
       (SELECT count(*) FROM picked) AS rows,
       (SELECT min(received_at) FROM picked) >= now() - make_interval(secs => $3::double precision) AS past_window,
       (SELECT count(*) FROM gone) AS deleted
"""

_SIZES = """
SELECT count(*) AS total, count(*) FILTER (WHERE done_at IS NULL) AS pending,
       pg_total_relation_size('webhook_inbox'::regclass) AS bytes
FROM webhook_inbox
"""

# What "the database is not there right now" looks like through asyncpg.
_UNAVAILABLE = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class PostgresInbox(InboxContextMixin):
    def __init__(
        self,
        dsn: str,
        *,
        max_connections: int = 4,
        connect_timeout: float = 5.0,
        command_timeout: float = 10.0,
        max_batch: int = 512,
    ):
        self.dsn = dsn
        self._pool_options = dict(
            min_size=1,
            max_size=max_connections,
            timeout=connect_timeout,
            command_timeout=command_timeout,
            # The ack promises durability: never let a server default turn commits asynchronous.
            server_settings={"synchronous_commit": "on", "application_name": "webhook-inbox"},
        )
        self._writer = GroupCommitWriter(self._commit, name="postgres-inbox-writer", max_batch=max_batch)
        self._pool: asyncpg.Pool | None = None
        self._schema_ready = False
        self._ready_lock = asyncio.Lock()
        self._opened = False
        self.owner = new_claim_owner()

    def __repr__(self) -> str:
        return "PostgresInbox(<dsn>)"  # the DSN may carry a password

    async def open(self) -> None:
        self._opened = True
        self._writer.start()
        await self._ensure_ready()

    async def close(self) -> None:
        self._opened = False
        await self._writer.stop()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except (TimeoutError, *_UNAVAILABLE):
                pool.terminate()

    async def _ensure_ready(self) -> asyncpg.Pool:
        """Create the pool and the table once; every call retries until that has worked."""
        if self._pool is not None and self._schema_ready:
            return self._pool
        if not self._opened:
            raise InboxUnavailable("inbox is not open")
        async with self._ready_lock:
            try:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(self.dsn, **self._pool_options)
                if not self._schema_ready:
                    async with self._pool.acquire() as conn, conn.transaction():
                        await conn.execute(_DDL_LOCK)
                        await conn.execute(DDL)
                        if await conn.fetchval(_LEASE_COLUMNS_MISSING):
                            await conn.execute(_MIGRATE)
                    self._schema_ready = True
            except _UNAVAILABLE as error:
                raise InboxUnavailable(f"PostgreSQL inbox: {error!r}") from error
        return self._pool

    async def _run(self, query: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        pool = await self._ensure_ready()
        try:
            return await query(pool)
        except _UNAVAILABLE as error:
            raise InboxUnavailable(f"PostgreSQL inbox: {error!r}") from error

    # -- writes ----------------------------------------------------------------------------------

    async def put(self, item: NewWebhook) -> PutResult:
        return await self._writer.put(item)

    async def _commit(self, items: list[NewWebhook]) -> list[PutResult]:
        columns = (
            [item.source_id for item in items],
            [item.event_id for item in items],
            [item.body for item in items],
            [headers_json(item.headers) for item in items],
            [datetime.fromtimestamp(item.received_at, UTC) for item in items],
        )
        rows = await self._run(lambda pool: pool.fetch(_INSERT_BATCH, *columns))
        inserted = {(row["source_id"], row["event_id"]): row["seq"] for row in rows}
        return put_results(items, inserted)

    async def claim(
        self, source_id: str, limit: int, *, owner: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> list[InboxRecord]:
        rows = await self._run(
            lambda pool: pool.fetch(_CLAIM, source_id, limit, owner or self.owner, float(lease_seconds))
        )
        return sorted((_record(row) for row in rows), key=lambda record: record.seq)  # RETURNING has no order

    async def renew(
        self, source_id: str, seqs: list[int], *, owner: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> int:
        if not seqs:
            return 0
        status = await self._run(
            lambda pool: pool.execute(
                "UPDATE webhook_inbox SET claimed_until = now() + make_interval(secs => $4::double precision)"
                " WHERE source_id = $1 AND seq = ANY($2::bigint[]) AND claimed_by = $3 AND done_at IS NULL",
                source_id,
                seqs,
                owner or self.owner,
                float(lease_seconds),
            )
        )
        return _changed(status)

    async def release(self, source_id: str, owner: str) -> int:
        status = await self._run(
            lambda pool: pool.execute(
                "UPDATE webhook_inbox SET claimed_by = NULL, claimed_until = NULL"
                " WHERE source_id = $1 AND claimed_by = $2 AND done_at IS NULL",
                source_id,
                owner,
            )
        )
        return _changed(status)

    async def mark_done(self, source_id: str, seqs: list[int], *, owner: str | None = None) -> None:
        if seqs:
            await self._run(
                lambda pool: pool.execute(
                    "UPDATE webhook_inbox SET done_at = now()"
                    " WHERE source_id = $1 AND seq = ANY($2::bigint[]) AND claimed_by = $3 AND done_at IS NULL",
                    source_id,
                    seqs,
                    owner or self.owner,
                )
            )

    async def purge_done(self, older_than_seconds: float, *, batch_rows: int = DEFAULT_PURGE_BATCH_ROWS) -> PurgeResult:
        after, deleted, batches = 0, 0, 0

        def purge_after(after: int) -> Callable[[asyncpg.Pool], Awaitable[asyncpg.Record | None]]:
            return lambda pool: pool.fetchrow(_PURGE, after, batch_rows, float(older_than_seconds))

        while True:
            row = await self._run(purge_after(after))
            if row is None or not row["rows"]:
                break
            batches += 1
            deleted += row["deleted"]
            after = row["last_seq"]
            if row["rows"] < batch_rows or row["past_window"]:
                break
        return PurgeResult(deleted, batches)

    # -- reads -----------------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._run(lambda pool: pool.fetchval("SELECT 1 FROM webhook_inbox LIMIT 1"))

    async def sizes(self) -> InboxSizes:
        row = await self._run(lambda pool: pool.fetchrow(_SIZES))
        return InboxSizes(row["total"], row["total"] - row["pending"], row["pending"], row["bytes"])

    async def pending(self, source_id: str) -> PendingSummary:
        row = await self._run(
            lambda pool: pool.fetchrow(
                f"SELECT {_SUMMARY_COLUMNS} FROM webhook_inbox WHERE source_id = $1 AND done_at IS NULL", source_id
            )
        )
        return PendingSummary(source_id, row["count"], row["oldest"], row["max_seq"])

    async def pending_sources(self) -> list[PendingSummary]:
        rows = await self._run(
            lambda pool: pool.fetch(
                f"SELECT source_id, {_SUMMARY_COLUMNS} FROM webhook_inbox WHERE done_at IS NULL"
                " GROUP BY source_id ORDER BY source_id"
            )
        )
        return [PendingSummary(row["source_id"], row["count"], row["oldest"], row["max_seq"]) for row in rows]

    async def peek(self, source_id: str, limit: int) -> list[InboxRecord]:
        rows = await self._run(
            lambda pool: pool.fetch(
                f"SELECT {_RECORD_COLUMNS} FROM webhook_inbox"
                " WHERE source_id = $1 AND done_at IS NULL ORDER BY seq LIMIT $2",
                source_id,
                limit,
            )
        )
        return [_record(row) for row in rows]

    async def leases(self, source_id: str) -> list[Lease]:
        rows = await self._run(
            lambda pool: pool.fetch(
                "SELECT claimed_by, count(*) AS count, max(claimed_until) AS until FROM webhook_inbox"
                " WHERE source_id = $1 AND done_at IS NULL AND claimed_until > now()"
                " GROUP BY claimed_by ORDER BY claimed_by",
                source_id,
            )
        )
        return [Lease(row["claimed_by"], row["count"], row["until"]) for row in rows]


def _record(row: asyncpg.Record) -> InboxRecord:
    return InboxRecord(
        row["seq"],
        row["source_id"],
        row["event_id"],
        bytes(row["body"]),
        json.loads(row["headers"]),
        row["received_at"],
    )


def _changed(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])
