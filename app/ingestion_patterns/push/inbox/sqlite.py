"""SQLite inbox (the local default): one file in WAL mode, every commit fsynced.

Puts are committed by a writer process per receiver process (``sqlite_writer.py``; the process runs
this module as its program, see the end of the file): it takes every put that arrived while its
previous commit was in flight and commits them as one transaction, so one fsync acknowledges all of
them, while the event loop goes on parsing requests (a thread would share the loop's GIL, and commit
only when the loop idles). The other writes (claims, leases, retention) run on one thread per
process, in order. Several gunicorn workers are several writers on one file: SQLite serialises their
write transactions, and a writer that finds the file busy waits (busy_timeout) and retries instead
of failing the request. Reads use a second connection on their own thread; WAL lets them run beside
the writers.

Retention (``purge_done``) deletes landed rows a batch per write transaction, each one queued on the
writer thread like any other write, so the receiver's processes wait for the file at most one batch.

A claim is a write: one ``UPDATE … RETURNING`` under ``BEGIN IMMEDIATE`` that leases only rows whose
lease is absent or expired, so claims from any number of processes never overlap. Lease expiries
are unix seconds of the claimer's clock: every process on one file shares the machine's clock.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import TypeVar

from .base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_PURGE_BATCH_ROWS,
    InboxContextMixin,
    InboxRecord,
    InboxSizes,
    InboxUnavailable,
    Lease,
    NewWebhook,
    PendingSummary,
    PurgeResult,
    PutResult,
    new_claim_owner,
)
from .sqlite_writer import Row, WriterProcess, run_writer_process

T = TypeVar("T")
log = logging.getLogger(__name__)

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
        claimed_by  TEXT,                               -- lease owner of the last claim
        claimed_until REAL,                             -- lease expiry, unix seconds
        UNIQUE (source_id, event_id)
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS webhook_inbox_pending
        ON webhook_inbox (source_id, seq, received_at) WHERE done_at IS NULL
    """,
)

# Added to inboxes created before claims took leases (SQLite has no ADD COLUMN IF NOT EXISTS).
_LEASE_COLUMNS = {"claimed_by": "TEXT", "claimed_until": "REAL"}

_RECORD_COLUMNS = "seq, source_id, event_id, body, headers, received_at"

# The subquery picks the oldest rows no live lease holds; the UPDATE and its subquery run under the
# write lock (BEGIN IMMEDIATE), so no other claim can pick them in between.
_CLAIM = f"""
UPDATE webhook_inbox SET claimed_by = ?, claimed_until = ?
WHERE seq IN (
    SELECT seq FROM webhook_inbox
    WHERE source_id = ? AND done_at IS NULL AND (claimed_until IS NULL OR claimed_until <= ?)
    ORDER BY seq LIMIT ?
)
RETURNING {_RECORD_COLUMNS}
"""

# Retention walks the inbox in seq order (the primary key), one window of rows per transaction: the
# window's bounds and its oldest receipt, then the done rows in it that are past the retention.
_PURGE_WINDOW = """
SELECT max(seq), count(*), min(received_at) FROM (
    SELECT seq, received_at FROM webhook_inbox WHERE seq > ? ORDER BY seq LIMIT ?
)
"""
_PURGE = "DELETE FROM webhook_inbox WHERE seq > ? AND seq <= ? AND done_at IS NOT NULL AND done_at < ?"

# Between two purge batches: another process waiting for the write lock (a receiver) takes its turn.
_PURGE_PAUSE_SECONDS = 0.005

_ROWS_PER_STATEMENT = 500  # 5 parameters each, well under SQLite's 32766 variables


@lru_cache(maxsize=2 * _ROWS_PER_STATEMENT)
def _insert_statement(rows: int, *, returning: bool) -> str:
    """Without ``returning``, an id the inbox holds aborts the statement (and its transaction) with an
    IntegrityError; with it, held ids are skipped and the new rows' seqs returned."""
    return (
        "INSERT INTO webhook_inbox (source_id, event_id, body, headers, received_at) VALUES "
        + ",".join(["(?, ?, ?, ?, ?)"] * rows)
        + (" ON CONFLICT (source_id, event_id) DO NOTHING RETURNING seq, source_id, event_id" if returning else "")
    )


def _flat(rows: list[tuple]) -> list:
    return [value for row in rows for value in row]


class _SomeHeld(Exception):
    """A batch met an event id the inbox already holds: undone, to be redone with RETURNING."""


_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_BUSY_RETRIES = 3


def _to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _summary(source_id: str, row: tuple) -> PendingSummary:
    count, oldest, max_seq = row
    return PendingSummary(source_id, count or 0, _to_datetime(oldest), max_seq)


def _record(row: tuple) -> InboxRecord:
    seq, source, event_id, body, headers, received_at = row
    received = datetime.fromtimestamp(received_at, UTC)
    return InboxRecord(seq, source, event_id, bytes(body), json.loads(headers), received)


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, ``COMMIT``ted on success; on any error (a kill's included) ``ROLLBACK``
    and re-raise, so the connection is never left inside a transaction. IMMEDIATE takes the write
    lock up front: a deferred transaction that reads first gets SQLITE_BUSY instead of waiting."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class SQLiteInbox(InboxContextMixin):
    def __init__(self, path: str | Path, *, timeout: float = 5.0):
        self.path = Path(path)
        self.timeout = timeout  # how long one write waits for another process's transaction
        self._write_thread: ThreadPoolExecutor | None = None  # every write but the puts, in order
        self._read_thread: ThreadPoolExecutor | None = None
        self._put_process: WriterProcess | None = None  # the puts: started by the first one
        self._put_lock = asyncio.Lock()
        self._write_conn: sqlite3.Connection | None = None
        self._turn_fd: int | None = None  # flock'ed around each write transaction
        self._read_conn: sqlite3.Connection | None = None
        self._ready_lock = asyncio.Lock()
        self.owner = new_claim_owner()

    def __repr__(self) -> str:
        return f"SQLiteInbox({str(self.path)!r})"

    # -- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._write_thread is None:
            self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-inbox-write")
            self._read_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-inbox-read")
        await self._ensure_ready()

    async def close(self) -> None:
        if self._put_process is not None:
            puts, self._put_process = self._put_process, None
            await puts.stop()  # after it has answered the puts sent to it
        for attr, conn in (("_write_thread", "_write_conn"), ("_read_thread", "_read_conn")):
            if (pool := getattr(self, attr)) is not None:
                setattr(self, attr, None)
                await asyncio.get_running_loop().run_in_executor(pool, self._close_conn, conn)
                pool.shutdown(wait=True)
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
        # A multi-row INSERT … ON CONFLICT keeps a statement journal; on disk that is a temp file
        # created, written and unlinked per commit (in /var/tmp). In memory it costs no syscalls.
        conn.execute("PRAGMA temp_store = MEMORY")
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
        with _immediate(conn):
            for statement in DDL:
                conn.execute(statement)
            present = {row[1] for row in conn.execute("PRAGMA table_info(webhook_inbox)")}
            for name, type_ in _LEASE_COLUMNS.items():
                if name not in present:
                    conn.execute(f"ALTER TABLE webhook_inbox ADD COLUMN {name} {type_}")

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
        turn = self._turn_fd
        if turn is None:
            raise InboxUnavailable("inbox is not open")
        fcntl.flock(turn, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(turn, fcntl.LOCK_UN)

    async def _write(self, fn: Callable[[], T]) -> T:
        await self._ensure_ready()
        return await self._on(self._write_thread, lambda: self._with_retries(fn))

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        await self._ensure_ready()
        return await self._on(self._read_thread, lambda: fn(self._open_conn(self._read_conn)))

    @staticmethod
    def _open_conn(conn: sqlite3.Connection | None) -> sqlite3.Connection:
        """``conn``, which ``_ensure_ready`` has made, unless a ``close`` got there first."""
        if conn is None:
            raise InboxUnavailable("inbox is closed")
        return conn

    # -- writes ----------------------------------------------------------------------------------

    async def put(self, item: NewWebhook) -> PutResult:
        puts = self._put_process
        if puts is None or not puts.alive:
            puts = await self._start_put_process()
        return await puts.put(item)

    async def _start_put_process(self) -> WriterProcess:
        """The writer process of this inbox's puts (sqlite_writer.py), started once the file is ready;
        started again if it has died."""
        await self._ensure_ready()
        async with self._put_lock:
            if self._put_process is None or not self._put_process.alive:
                if self._write_thread is None:
                    raise InboxUnavailable("inbox is not open")
                try:
                    # This module is the writer process's program (its __main__ below).
                    argv = [sys.executable, "-m", __name__, str(self.path), repr(self.timeout)]
                    self._put_process = await WriterProcess.start(argv)
                except OSError as error:
                    raise InboxUnavailable(f"SQLite inbox writer process: {error}") from error
            return self._put_process

    def commit_rows(self, rows: list[Row]) -> dict[tuple[str, str], int]:
        """In the writer process: one transaction for ``rows`` (distinct ids), each a put's row; the
        new rows' seqs by (source_id, event_id). Multi-row INSERTs: far less Python per row than one
        execute each."""
        if self._write_conn is None:
            self._connect_writer()
        return self._with_retries(lambda: self._insert_rows(rows))

    def _insert_rows(self, rows: list[Row]) -> dict[tuple[str, str], int]:
        try:
            return self._insert(rows, returning=False)
        except _SomeHeld:
            return self._insert(rows, returning=True)

    def _insert(self, rows: list[tuple], *, returning: bool) -> dict[tuple[str, str], int]:
        """The rows' seqs by (source, event), in one transaction.

        Without ``returning`` (the usual batch, every id new): one SQLite step per statement instead
        of one per row (measured when commits ran on a thread beside the busy event loop, where each
        step had to take the GIL back: 11-16 ms for 32 rows this way, 37-42 ms with RETURNING). The rows' seqs are consecutive, ending at ``lastrowid``: the statement holds
        the write lock, and AUTOINCREMENT gives each row the largest seq plus one. An id the inbox
        holds aborts the statement and undoes the transaction: ``_SomeHeld``, to be redone with
        ``returning``, which skips held ids and says which rows are new.

        A batch that fits one statement runs it alone, in autocommit: SQLite makes that statement its
        own transaction, committed (fsynced, synchronous=FULL) before ``execute`` returns. That saves
        the BEGIN and COMMIT steps."""
        conn = self._open_conn(self._write_conn)
        if not returning and len(rows) <= _ROWS_PER_STATEMENT:
            return self._insert_new(conn, rows)
        inserted: dict[tuple[str, str], int] = {}
        with _immediate(conn):
            for start in range(0, len(rows), _ROWS_PER_STATEMENT):
                chunk = rows[start : start + _ROWS_PER_STATEMENT]
                if not returning:
                    inserted.update(self._insert_new(conn, chunk))
                    continue
                cursor = conn.execute(_insert_statement(len(chunk), returning=True), _flat(chunk))
                inserted.update({(source, event): seq for seq, source, event in cursor.fetchall()})
        return inserted

    @staticmethod
    def _insert_new(conn: sqlite3.Connection, rows: list[tuple]) -> dict[tuple[str, str], int]:
        """One INSERT of rows whose ids are all new (else ``_SomeHeld``), and their seqs."""
        try:
            cursor = conn.execute(_insert_statement(len(rows), returning=False), _flat(rows))
        except sqlite3.IntegrityError:  # the one constraint a NewWebhook can break: (source_id, event_id)
            raise _SomeHeld from None
        assert cursor.lastrowid is not None  # a successful INSERT sets it
        first = cursor.lastrowid - len(rows) + 1
        return {(row[0], row[1]): first + offset for offset, row in enumerate(rows)}

    async def claim(
        self, source_id: str, limit: int, *, owner: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> list[InboxRecord]:
        owner = owner or self.owner

        def take() -> list[tuple]:
            now = time.time()  # inside the transaction's retries: a retry leases from its own now
            with _immediate(self._open_conn(self._write_conn)) as conn:
                return conn.execute(_CLAIM, (owner, now + lease_seconds, source_id, now, limit)).fetchall()

        rows = await self._write(take)
        return sorted((_record(row) for row in rows), key=lambda record: record.seq)  # RETURNING has no order

    async def renew(
        self, source_id: str, seqs: list[int], *, owner: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> int:
        owner = owner or self.owner
        return await self._update_claimed(
            "UPDATE webhook_inbox SET claimed_until = ?"
            " WHERE seq = ? AND source_id = ? AND claimed_by = ? AND done_at IS NULL",
            lambda now: [(now + lease_seconds, seq, source_id, owner) for seq in seqs],
        )

    async def release(self, source_id: str, owner: str) -> int:
        return await self._update_claimed(
            "UPDATE webhook_inbox SET claimed_by = NULL, claimed_until = NULL"
            " WHERE source_id = ? AND claimed_by = ? AND done_at IS NULL",
            lambda now: [(source_id, owner)],
        )

    async def mark_done(self, source_id: str, seqs: list[int], *, owner: str | None = None) -> None:
        owner = owner or self.owner
        await self._update_claimed(
            "UPDATE webhook_inbox SET done_at = ?"
            " WHERE seq = ? AND source_id = ? AND claimed_by = ? AND done_at IS NULL",
            lambda now: [(now, seq, source_id, owner) for seq in seqs],
        )

    async def purge_done(self, older_than_seconds: float, *, batch_rows: int = DEFAULT_PURGE_BATCH_ROWS) -> PurgeResult:
        cutoff = time.time() - older_than_seconds
        after, deleted, batches = 0, 0, 0

        def purge_window(after: int) -> tuple[int, int, float, int]:
            """(last seq, rows, oldest receipt, rows deleted) of the window after ``after``."""
            with _immediate(self._open_conn(self._write_conn)) as conn:
                last, rows, oldest = conn.execute(_PURGE_WINDOW, (after, batch_rows)).fetchone()
                if not rows:
                    return after, 0, cutoff, 0
                return last, rows, oldest, conn.execute(_PURGE, (after, last, cutoff)).rowcount

        while True:
            last, rows, oldest, gone = await self._write(partial(purge_window, after))
            if not rows:
                break
            batches += 1
            deleted += gone
            after = last
            # A short window is the end of the inbox; a window received after the cutoff holds
            # nothing done before it, and neither do the later ones.
            if rows < batch_rows or oldest >= cutoff:
                break
            await asyncio.sleep(_PURGE_PAUSE_SECONDS)
        return PurgeResult(deleted, batches)

    async def _update_claimed(self, statement: str, parameters: Callable[[float], list[tuple]]) -> int:
        """Run ``statement`` once per parameter row in one write transaction; the rows it changed."""

        def update() -> int:
            rows = parameters(time.time())
            if not rows:
                return 0
            with _immediate(self._open_conn(self._write_conn)) as conn:
                return conn.executemany(statement, rows).rowcount

        return await self._write(update)

    # -- reads -----------------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1 FROM webhook_inbox LIMIT 1").fetchall())

    async def pending(self, source_id: str) -> PendingSummary:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT count(*), min(received_at), max(seq) FROM webhook_inbox"
                " WHERE source_id = ? AND done_at IS NULL",
                (source_id,),
            ).fetchone()
        )
        return _summary(source_id, row)

    async def pending_sources(self) -> list[PendingSummary]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT source_id, count(*), min(received_at), max(seq) FROM webhook_inbox"
                " WHERE done_at IS NULL GROUP BY source_id ORDER BY source_id"
            ).fetchall()
        )
        return [_summary(row[0], row[1:]) for row in rows]

    async def peek(self, source_id: str, limit: int) -> list[InboxRecord]:
        rows = await self._read(
            lambda conn: conn.execute(
                f"SELECT {_RECORD_COLUMNS} FROM webhook_inbox"
                " WHERE source_id = ? AND done_at IS NULL ORDER BY seq LIMIT ?",
                (source_id, limit),
            ).fetchall()
        )
        return [_record(row) for row in rows]

    async def sizes(self) -> InboxSizes:
        def count(conn: sqlite3.Connection) -> tuple[int, int]:
            # One read transaction, so the two counts agree; pending is read from its partial index.
            conn.execute("BEGIN")
            try:
                total = conn.execute("SELECT count(*) FROM webhook_inbox").fetchone()[0]
                pending = conn.execute("SELECT count(*) FROM webhook_inbox WHERE done_at IS NULL").fetchone()[0]
            finally:
                conn.execute("COMMIT")
            return total, pending

        total, pending = await self._read(count)
        return InboxSizes(total, total - pending, pending, self._file_bytes())

    def _file_bytes(self) -> int:
        """The database file and its WAL (the shared-memory index is not data)."""
        size = 0
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            with suppress(FileNotFoundError):
                size += path.stat().st_size
        return size

    async def leases(self, source_id: str) -> list[Lease]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT claimed_by, count(*), max(claimed_until) FROM webhook_inbox"
                " WHERE source_id = ? AND done_at IS NULL AND claimed_until > ?"
                " GROUP BY claimed_by ORDER BY claimed_by",
                (source_id, time.time()),
            ).fetchall()
        )
        return [Lease(owner, count, datetime.fromtimestamp(until, UTC)) for owner, count, until in rows]


if __name__ == "__main__":  # the writer process of an inbox's puts: python -m … PATH TIMEOUT
    path, timeout = sys.argv[1:]
    run_writer_process(SQLiteInbox(path, timeout=float(timeout)).commit_rows)
