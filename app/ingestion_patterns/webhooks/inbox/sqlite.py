"""SQLite inbox (the local default): one file in WAL mode, every commit fsynced.

Writes go through one thread per process that owns the write connection; the group-commit writer
hands it whole batches, so one fsync acknowledges every request that arrived meanwhile. Several
gunicorn workers are several processes on one file: SQLite serialises their write transactions, and
a writer that finds the file busy waits (busy_timeout) and retries instead of failing the request.
Reads use a second connection on their own thread; WAL lets them run beside the writer.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from .base import (
    GroupCommitWriter,
    InboxContextMixin,
    InboxRecord,
    InboxUnavailable,
    NewWebhook,
    PendingSummary,
    PutResult,
)

T = TypeVar("T")

DDL = (
    """
    CREATE TABLE IF NOT EXISTS webhook_inbox (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: never reused, only grows
        source_id   TEXT    NOT NULL,
        event_id    TEXT    NOT NULL,
        body        BLOB    NOT NULL,
        headers     TEXT    NOT NULL,                   -- JSON object
        received_at REAL    NOT NULL,                   -- unix seconds, UTC
        done_at     REAL,
        UNIQUE (source_id, event_id)
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS webhook_inbox_pending
        ON webhook_inbox (source_id, seq, received_at) WHERE done_at IS NULL
    """,
)

_ROWS_PER_STATEMENT = 500  # 5 parameters each, well under SQLite's 32766 variables


@lru_cache(maxsize=_ROWS_PER_STATEMENT)
def _insert_statement(rows: int) -> str:
    return (
        "INSERT INTO webhook_inbox (source_id, event_id, body, headers, received_at) VALUES "
        + ",".join(["(?, ?, ?, ?, ?)"] * rows)
        + " ON CONFLICT (source_id, event_id) DO NOTHING RETURNING seq, source_id, event_id"
    )


_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_BUSY_RETRIES = 3


def _to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


def _summary(source_id: str, row: tuple) -> PendingSummary:
    count, oldest, max_seq = row
    return PendingSummary(source_id, count or 0, _to_datetime(oldest), max_seq)


class SQLiteInbox(InboxContextMixin):
    def __init__(self, path: str | Path, *, timeout: float = 5.0, max_batch: int = 512):
        self.path = Path(path)
        self.timeout = timeout  # how long one write waits for another process's transaction
        self._writer = GroupCommitWriter(self._commit, name=f"sqlite-inbox-writer:{self.path}",
                                         max_batch=max_batch)
        self._write_thread: ThreadPoolExecutor | None = None
        self._read_thread: ThreadPoolExecutor | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._turn_fd: int | None = None  # flock'ed around each write transaction
        self._read_conn: sqlite3.Connection | None = None
        self._ready_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SQLiteInbox({str(self.path)!r})"

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._write_thread is None:
            self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-inbox-write")
            self._read_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-inbox-read")
        self._writer.start()
        await self._ensure_ready()

    async def close(self) -> None:
        await self._writer.stop()
        for pool, attr in ((self._write_thread, "_write_conn"), (self._read_thread, "_read_conn")):
            if pool is not None:
                await asyncio.get_running_loop().run_in_executor(pool, self._close_conn, attr)
                pool.shutdown(wait=True)
        self._write_thread = self._read_thread = None
        if self._turn_fd is not None:
            os.close(self._turn_fd)
            self._turn_fd = None

    def _close_conn(self, attr: str) -> None:
        conn = getattr(self, attr)
        if conn is not None:
            conn.close()
            setattr(self, attr, None)

    async def _ensure_ready(self) -> None:
        """Connect and create the schema, once; retried by every call until it has worked."""
        if self._write_conn is not None and self._read_conn is not None:
            return
        if self._write_thread is None:
            raise InboxUnavailable("inbox is not open")
        async with self._ready_lock:
            if self._write_conn is None:
                await self._on(self._write_thread, self._connect_writer)
            if self._read_conn is None:
                await self._on(self._read_thread, self._connect_reader)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is one transaction.
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        return conn

    def _connect_writer(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._turn_fd is None:
            self._turn_fd = os.open(self.path.with_name(self.path.name + "-writer-turn"), os.O_RDWR | os.O_CREAT, 0o644)
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")  # WAL + FULL: every commit is fsynced
            self._with_retries(lambda: self._create_schema(conn))
        except BaseException:
            conn.close()
            raise
        self._write_conn = conn

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in DDL:
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _connect_reader(self) -> None:
        self._read_conn = self._connect()

    # -- thread plumbing ---------------------------------------------------------------------------

    async def _on(self, pool: ThreadPoolExecutor | None, fn: Callable[[], T]) -> T:
        if pool is None:
            raise InboxUnavailable("inbox is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn)
        except sqlite3.Error as error:
            raise InboxUnavailable(f"SQLite inbox {self.path}: {error}") from error
        except OSError as error:
            raise InboxUnavailable(f"SQLite inbox {self.path}: {error}") from error

    def _with_retries(self, transaction: Callable[[], T]) -> T:
        """Run a write transaction; when another process holds the file past busy_timeout, retry."""
        for attempt in range(_BUSY_RETRIES):
            try:
                with self._writer_turn():
                    return transaction()
            except sqlite3.OperationalError as error:
                if ((error.sqlite_errorcode or 0) & 0xFF) not in _BUSY or attempt == _BUSY_RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """Take turns with the other processes writing this file (e.g. gunicorn's workers).

        SQLite serialises writers by itself, but a writer that finds the file busy sleeps in
        growing steps (1, 2, 5, 10 ms …) before it looks again, which under load costs more than the
        fsync. A blocking flock on a side file wakes the next writer the moment the lock is free.
        """
        fcntl.flock(self._turn_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._turn_fd, fcntl.LOCK_UN)

    async def _write(self, fn: Callable[[], T]) -> T:
        await self._ensure_ready()
        return await self._on(self._write_thread, lambda: self._with_retries(fn))

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        await self._ensure_ready()
        return await self._on(self._read_thread, lambda: fn(self._read_conn))

    # -- writes ----------------------------------------------------------------------------------

    async def put(self, item: NewWebhook) -> PutResult:
        return await self._writer.put(item)

    async def _commit(self, items: list[NewWebhook]) -> list[PutResult]:
        return await self._write(lambda: self._insert_batch(items))

    def _insert_batch(self, items: list[NewWebhook]) -> list[PutResult]:
        # One multi-row INSERT … RETURNING per batch: far less Python per row than one execute each.
        conn = self._write_conn
        rows = [(item.source_id, item.event_id, item.body, json.dumps(item.headers, separators=(",", ":")),
                 item.received_at.timestamp()) for item in items]
        conn.execute("BEGIN IMMEDIATE")
        try:
            inserted = {}
            for start in range(0, len(rows), _ROWS_PER_STATEMENT):
                chunk = rows[start:start + _ROWS_PER_STATEMENT]
                cursor = conn.execute(_insert_statement(len(chunk)), [value for row in chunk for value in row])
                inserted.update({(source, event): seq for seq, source, event in cursor.fetchall()})
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        results = []
        for item in items:
            seq = inserted.get((item.source_id, item.event_id))
            results.append(PutResult(seq is not None, item.event_id, seq))
        return results

    async def mark_done(self, source_id: str, seqs: list[int]) -> None:
        if not seqs:
            return
        now = time.time()

        def update() -> None:
            conn = self._write_conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "UPDATE webhook_inbox SET done_at = ? WHERE seq = ? AND source_id = ? AND done_at IS NULL",
                    [(now, seq, source_id) for seq in seqs],
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        await self._write(update)

    # -- reads -----------------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1 FROM webhook_inbox LIMIT 1").fetchall())

    async def pending(self, source_id: str) -> PendingSummary:
        row = await self._read(lambda conn: conn.execute(
            "SELECT count(*), min(received_at), max(seq) FROM webhook_inbox"
            " WHERE source_id = ? AND done_at IS NULL", (source_id,)).fetchone())
        return _summary(source_id, row)

    async def pending_sources(self) -> list[PendingSummary]:
        rows = await self._read(lambda conn: conn.execute(
            "SELECT source_id, count(*), min(received_at), max(seq) FROM webhook_inbox"
            " WHERE done_at IS NULL GROUP BY source_id ORDER BY source_id").fetchall())
        return [_summary(row[0], row[1:]) for row in rows]

    async def claim(self, source_id: str, limit: int) -> list[InboxRecord]:
        rows = await self._read(lambda conn: conn.execute(
            "SELECT seq, source_id, event_id, body, headers, received_at FROM webhook_inbox"
            " WHERE source_id = ? AND done_at IS NULL ORDER BY seq LIMIT ?", (source_id, limit)).fetchall())
        return [
            InboxRecord(seq, source, event_id, bytes(body), json.loads(headers), _to_datetime(received_at))
            for seq, source, event_id, body, headers, received_at in rows
        ]
