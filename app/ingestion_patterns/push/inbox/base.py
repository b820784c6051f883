"""The inbox interface: where the receiver commits webhooks before it acknowledges them.

The receiver ``put``s each webhook and answers 202 only once ``put`` returns (the row is committed
and fsynced). The Dagster side drains it: ``pending``/``pending_sources`` for the sensor, ``claim``
for a batch, ``mark_done`` after the batch has landed in DuckDB. Done rows are kept, so an event id
that is sent again stays a duplicate.

A claim is a lease: the rows it returns carry an owner and an expiry, and no other claim gets them
until they are done, released, or the lease runs out (so a crashed claimer's rows come back by
themselves). ``mark_done`` marks only rows its owner holds. Leased rows still count as pending:
pending means "not landed yet", and the sensor's run key (the source's highest pending seq) must
not move because a run has started. ``peek`` reads the oldest pending rows and changes nothing.

Retention: ``purge_done`` deletes the rows landed (done) longer ago than a window, a small batch per
transaction, so a writer (the receiver's group commit) never waits for more than one batch. Until
then a done row keeps its event id reserved: within the window a re-sent id is a duplicate, after it
the id is new again (and the warehouse's primary key makes its landing a no-op). Pending rows,
leased or not, are never purged. ``sizes`` counts the rows (total, done, pending) and the storage.

Both backends (SQLite, PostgreSQL) implement exactly these semantics; one test suite runs on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, TypeVar, runtime_checkable

import orjson

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How long a claim holds its rows unless renewed: far longer than landing one batch takes, short
#: enough that a crashed run's rows are not stuck for long.
DEFAULT_LEASE_SECONDS = 600.0


def new_claim_owner() -> str:
    """A lease owner unique to this inbox object, readable in the table (host, pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


#: Rows ``purge_done`` deletes per transaction: short enough (tens of milliseconds) that the
#: receiver's group commits, which wait for the write lock, are never held up for long.
DEFAULT_PURGE_BATCH_ROWS = 5000

#: Headers kept with the body: the ones a consumer may need to interpret or audit the payload.
#: The signature headers are kept (they are not secrets), the signing secret never reaches here.
KEPT_HEADERS: tuple[str, ...] = (
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-hub-signature-256",
    "x-request-id",
)


class InboxUnavailable(Exception):
    """The inbox cannot be reached or written right now (server down, file locked or unwritable).

    A transient condition: the receiver answers 503 with Retry-After, the sender retries.
    """


# NewWebhook and PutResult are made once per webhook: not frozen, because a frozen dataclass sets each
# field through object.__setattr__, which doubles what building one costs on the receiver's hot path.
@dataclass(slots=True)
class NewWebhook:
    source_id: str
    event_id: str
    body: bytes
    headers: dict[str, str]
    # Unix seconds (UTC), not a datetime: datetime.now(UTC) costs the hot path 0.5 µs per webhook, and
    # the SQLite inbox stores seconds anyway. The PostgreSQL inbox converts when it writes a batch.
    received_at: float = field(default_factory=time.time)


@dataclass(slots=True)
class PutResult:
    accepted: bool  # False: the inbox already held (source_id, event_id)
    event_id: str
    seq: int | None  # the new row's position; None for a duplicate


@dataclass(frozen=True, slots=True)
class PendingSummary:
    source_id: str
    count: int
    oldest_received_at: datetime | None
    max_seq: int | None

    def oldest_age_seconds(self, now: datetime | None = None) -> float | None:
        if self.oldest_received_at is None:
            return None
        now = now or datetime.now(UTC)
        return max(0.0, (now - self.oldest_received_at).total_seconds())


@dataclass(frozen=True, slots=True)
class Lease:
    """The live lease of one owner on a source's rows (from ``Inbox.leases``)."""

    owner: str
    count: int
    until: datetime


@dataclass(frozen=True, slots=True)
class InboxSizes:
    """How much the inbox holds (from ``Inbox.sizes``)."""

    total: int
    done: int  # landed, kept for duplicate detection until the retention window has passed
    pending: int  # not landed yet (leased ones included)
    storage_bytes: int | None  # SQLite: the file and its WAL; PostgreSQL: the table, its indexes and TOAST


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What one ``Inbox.purge_done`` removed."""

    deleted: int
    batches: int  # transactions that deleted rows or looked for them


@dataclass(frozen=True, slots=True)
class InboxRecord:
    seq: int
    source_id: str
    event_id: str
    body: bytes
    headers: dict[str, str]
    received_at: datetime


@runtime_checkable
class Inbox(Protocol):
    async def open(self) -> None:
        """Connect and create the tables (idempotent).

        Raises InboxUnavailable when the store is unreachable; the object stays usable and every
        later call tries to connect again, so a receiver can start before its database.
        """

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Return when the inbox is reachable and writable-looking; else raise InboxUnavailable."""

    async def put(self, item: NewWebhook) -> PutResult:
        """Commit ``item`` durably (group-committed with concurrent puts) unless its id is known."""

    #: The lease owner of calls that pass none: unique to this object.
    owner: str

    async def pending(self, source_id: str) -> PendingSummary:
        """The rows of ``source_id`` not done yet, leased ones included."""

    async def pending_sources(self) -> list[PendingSummary]:
        """One summary per source that has pending rows (leased ones included)."""

    async def peek(self, source_id: str, limit: int) -> list[InboxRecord]:
        """Up to ``limit`` pending rows of ``source_id``, leased or not, oldest first. Changes nothing."""

    async def claim(
        self, source_id: str, limit: int, *, owner: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> list[InboxRecord]:
        """Lease up to ``limit`` pending rows of ``source_id`` that no live lease holds, oldest
        (lowest seq) first, to ``owner`` (default ``self.owner``) for ``lease_seconds``.

        Concurrent claims, from any process, never return the same row while its lease lives.
        """

    async def renew(
        self, source_id: str, seqs: list[int], *, owner: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> int:
        """Extend ``owner``'s lease on ``seqs`` to ``lease_seconds`` from now; returns the rows
        renewed (a row whose lease ran out and was claimed by another owner is not ours any more)."""

    async def release(self, source_id: str, owner: str) -> int:
        """Give back the undone rows ``owner`` holds (its claimer is known to be dead); returns how many."""

    async def leases(self, source_id: str) -> list[Lease]:
        """The live leases on ``source_id``'s pending rows, one per owner."""

    async def mark_done(self, source_id: str, seqs: list[int], *, owner: str | None = None) -> None:
        """Mark done the rows of ``seqs`` that ``owner`` (default ``self.owner``) holds; they stop
        being pending but keep their event id reserved. Other rows are left alone."""

    async def sizes(self) -> InboxSizes:
        """Rows in the inbox (total, done, pending) and the bytes its storage takes."""

    async def purge_done(self, older_than_seconds: float, *, batch_rows: int = DEFAULT_PURGE_BATCH_ROWS) -> PurgeResult:
        """Delete the rows marked done more than ``older_than_seconds`` ago, walking the inbox in
        ``seq`` order ``batch_rows`` rows per transaction (each its own short write lock), and stop
        at the first batch received after that window. Pending rows are never deleted; a deleted
        row's event id is accepted as new if it is sent again."""

    async def __aenter__(self) -> Inbox: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class InboxContextMixin:
    """``async with inbox:`` opens and closes it."""

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self):
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def headers_json(headers: dict[str, str]) -> str:
    """The kept headers as the JSON text both backends store (orjson: a fifteenth of json.dumps's
    cost, which the writer paid per webhook). A header value that is not valid UTF-8 reaches here
    with surrogates (aiohttp's surrogateescape), which orjson refuses: json escapes them."""
    try:
        return orjson.dumps(headers).decode()
    except TypeError:
        return json.dumps(headers, separators=(",", ":"))


def _webhook_id(item: NewWebhook) -> tuple[str, str]:
    return item.source_id, item.event_id


def first_occurrences(
    items: Iterable[T],
    key: Callable[[T], tuple[str, str]] = _webhook_id,  # type: ignore[assignment]
) -> tuple[list[T], set[int]]:
    """Split a batch into the items to insert and the positions of in-batch repeats.

    Two requests with the same (source_id, event_id) in one group commit: the first is accepted,
    the later ones are duplicates, on both backends alike. ``key`` gives an item's id (a
    NewWebhook's by default; the SQLite writer process batches rows).
    """
    seen: set[tuple[str, str]] = set()
    unique: list[T] = []
    repeats: set[int] = set()
    for position, item in enumerate(items):
        webhook_id = key(item)
        if webhook_id in seen:
            repeats.add(position)
        else:
            seen.add(webhook_id)
            unique.append(item)
    return unique, repeats


@dataclass(slots=True)
class QueuedPut:
    item: NewWebhook
    future: asyncio.Future[PutResult]


class GroupCommitQueue:
    """Collects concurrent puts; a single writer task commits whatever has queued up as one batch.

    While one batch commits (fsync), new puts queue; the next batch takes all of them. So under load
    one commit serves many requests, and with one request in flight it is a plain commit.
    """

    def __init__(self, max_batch: int = 512):
        self.max_batch = max_batch
        self._queue: asyncio.Queue[QueuedPut] = asyncio.Queue()

    def submit(self, item: NewWebhook) -> asyncio.Future[PutResult]:
        future: asyncio.Future[PutResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(QueuedPut(item, future))
        return future

    async def next_batch(self) -> list[QueuedPut]:
        """Wait for at least one put, then take every queued put (up to max_batch).

        Puts whose caller gave up (future cancelled by a timeout) are dropped here, so a request
        answered 503 before its batch started is not stored behind the sender's back.
        """
        batch = [await self._queue.get()]
        while len(batch) < self.max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return [queued for queued in batch if not queued.future.done()]

    def fail_all(self, error: BaseException) -> None:
        while not self._queue.empty():
            queued = self._queue.get_nowait()
            if not queued.future.done():
                queued.future.set_exception(error)


def put_results(items: Iterable[NewWebhook], inserted: dict[tuple[str, str], int]) -> list[PutResult]:
    """One result per item: accepted with its seq where the batch inserted it, else a duplicate."""
    results = []
    for item in items:
        seq = inserted.get((item.source_id, item.event_id))
        results.append(PutResult(seq is not None, item.event_id, seq))
    return results


def resolve(batch: list[QueuedPut], results: list[PutResult]) -> None:
    for queued, result in zip(batch, results, strict=True):
        if not queued.future.done():
            queued.future.set_result(result)


def reject(batch: list[QueuedPut], error: InboxUnavailable) -> None:
    for queued in batch:
        if not queued.future.done():
            # One instance per waiter: a shared one would collect every waiter's traceback.
            queued.future.set_exception(InboxUnavailable(*error.args))


class GroupCommitWriter:
    """The one writer task of an inbox: drains the queue and commits each batch in one transaction.

    ``commit`` receives items with distinct (source_id, event_id) and returns one PutResult each,
    in order; in-batch repeats are answered as duplicates here, identically for every backend.
    """

    def __init__(self, commit, *, name: str, max_batch: int = 512):
        self._commit = commit
        self._name = name
        self._queue = GroupCommitQueue(max_batch)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._queue.fail_all(InboxUnavailable("inbox is closed"))

    async def put(self, item: NewWebhook) -> PutResult:
        if self._task is None:
            raise InboxUnavailable("inbox is not open")
        return await self._queue.submit(item)

    async def _run(self) -> None:
        while True:
            batch = await self._queue.next_batch()
            if not batch:
                continue
            items = [queued.item for queued in batch]
            unique, repeats = first_occurrences(items)
            try:
                committed = iter(await self._commit(unique))
            except asyncio.CancelledError:
                # Closing mid-commit: whether it committed is unknown, so the callers get a 503
                # and their retry is answered 202 or 200 duplicate (never stored twice).
                reject(batch, InboxUnavailable("inbox closed during the commit"))
                raise
            except InboxUnavailable as error:
                reject(batch, error)
                continue
            except Exception as error:
                log.exception("inbox commit failed")
                reject(batch, InboxUnavailable(f"inbox commit failed: {error!r}"))
                continue
            results = [
                PutResult(False, item.event_id, None) if position in repeats else next(committed)
                for position, item in enumerate(items)
            ]
            resolve(batch, results)
