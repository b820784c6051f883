"""The SQLite inbox's writer process: where a receiver's puts are committed, beside its event loop.

Why a process and not a thread: a thread needs the GIL to take a batch and again to hand back its
results, and an event loop busy with requests lets go of the GIL for good only when it has nothing
left to do. So a writer thread committed in a convoy with the loop: each commit waited until every
request in flight was queued, and the loop then idled while it ran (docs/webhook-receiver.md).
A process has its own GIL: it commits one batch while the loop parses the next requests.

The wire, both ways over the child's stdin and stdout: frames of a 4-byte length and a pickle
(parent and child run the same code).
- Loop to process: one frame per loop pass, the list of rows put in that pass, each the
  ``(source_id, event_id, body, headers_json, received_at)`` tuple that the INSERT binds.
- Process to loop: one frame per commit, in the order the rows came: the list of each row's seq
  (None: the inbox already held its id, or an earlier row of the commit had it), or, when the
  commit failed, ``(rows, error text)`` (every put of the batch is answered 503).

The process reads every complete frame that has arrived and commits them as one transaction, so
one fsync acknowledges them all. Closing its stdin stops it once it has answered what it read; so
does the parent's death. If it dies, the puts waiting on it get InboxUnavailable (503, the sender
retries: a row it had committed makes the retry a duplicate, never a second row), and the next put
starts a new one. A put whose request was answered 503 for taking too long
(``WEBHOOK_INBOX_TIMEOUT_SECONDS``) is still committed if it had reached the process: the sender's
retry is then answered 200 duplicate, and the row is stored once either way.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import pickle
import signal
import sqlite3
import struct
from collections.abc import Callable
from operator import itemgetter

from .base import InboxUnavailable, NewWebhook, PutResult, first_occurrences, headers_json

log = logging.getLogger(__name__)

_LENGTH = struct.Struct("<I")
Row = tuple[str, str, bytes, str, float]  # (source_id, event_id, body, headers_json, received_at)
#: One transaction for rows of distinct ids; the new rows' seqs by (source_id, event_id).
CommitRows = Callable[[list[Row]], dict[tuple[str, str], int]]


def _frames(buffer: bytearray) -> list:
    """Take every complete frame off the front of ``buffer``, unpickled."""
    frames, position = [], 0
    while len(buffer) - position >= _LENGTH.size:
        (length,) = _LENGTH.unpack_from(buffer, position)
        end = position + _LENGTH.size + length
        if end > len(buffer):
            break
        frames.append(pickle.loads(buffer[position + _LENGTH.size : end]))
        position = end
    del buffer[:position]
    return frames


def _frame(value: object) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def row_of(item: NewWebhook) -> Row:
    return (item.source_id, item.event_id, item.body, headers_json(item.headers), item.received_at)


# -- the event loop's side ---------------------------------------------------------------------------


class WriterProcess(asyncio.SubprocessProtocol):
    """Hands each put's row to the writer process and resolves its future when the commit is back."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._rows: list[Row] = []  # put in this loop pass, sent at its end
        self._waiting: collections.deque[tuple[asyncio.Future[PutResult], str]] = collections.deque()
        self._received = bytearray()
        self._gone: asyncio.Future[None] = loop.create_future()

    @classmethod
    async def start(cls, argv: list[str]) -> WriterProcess:
        """Run ``argv``, a program that calls ``run_writer_process``."""
        loop = asyncio.get_running_loop()
        process = cls(loop)
        await loop.subprocess_exec(
            lambda: process,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,  # its log lines go where the receiver's go
        )
        return process

    @property
    def alive(self) -> bool:
        return not self._gone.done()

    def put(self, item: NewWebhook) -> asyncio.Future[PutResult]:
        future = self._loop.create_future()
        if not self.alive:
            future.set_exception(InboxUnavailable("SQLite inbox writer process has exited"))
            return future
        if not self._rows:
            self._loop.call_soon(self._send)
        self._rows.append(row_of(item))
        self._waiting.append((future, item.event_id))
        return future

    def _send(self) -> None:
        rows, self._rows = self._rows, []
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.write(_frame(rows))

    async def stop(self) -> None:
        """Let it answer what it has been sent, then wait for it to exit."""
        if self._rows:
            self._send()
        if self._stdin is not None:
            self._stdin.close()
        await asyncio.shield(self._gone)

    # -- asyncio.SubprocessProtocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self._transport = transport
        self._stdin = transport.get_pipe_transport(0)  # type: ignore[assignment]

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._received += data
        for answer in _frames(self._received):
            if isinstance(answer, tuple):  # (rows, error): the commit failed
                rows, error = answer
                for _ in range(rows):
                    future, _ = self._waiting.popleft()
                    if not future.done():
                        future.set_exception(InboxUnavailable(error))
                continue
            for seq in answer:
                future, event_id = self._waiting.popleft()
                if not future.done():
                    future.set_result(PutResult(seq is not None, event_id, seq))

    def connection_lost(self, exc: Exception | None) -> None:
        """The process has exited and both pipes are closed: nothing more will be answered."""
        code = self._transport.get_returncode() if self._transport is not None else None
        error = InboxUnavailable(f"SQLite inbox writer process exited (code {code})")
        while self._waiting:
            future, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(InboxUnavailable(*error.args))
        if not self._gone.done():
            self._gone.set_result(None)


# -- the process's side ------------------------------------------------------------------------------


def serve(commit_rows: CommitRows, reader: int = 0, writer: int = 1) -> None:
    """Commit what arrives on ``reader`` and answer on ``writer`` until ``reader`` ends."""
    received = bytearray()
    while chunk := os.read(reader, 1 << 20):
        received += chunk
        rows = [row for frame in _frames(received) for row in frame]
        if rows:
            answer = memoryview(_frame(_commit(commit_rows, rows)))
            while answer:
                answer = answer[os.write(writer, answer) :]


def _commit(commit_rows: CommitRows, rows: list[Row]) -> list[int | None] | tuple[int, str]:
    """One transaction for ``rows``; each row's seq, None for a held id or a repeat in ``rows``."""
    unique, repeats = first_occurrences(rows, key=itemgetter(0, 1))
    try:
        seqs = commit_rows(unique)
    except (sqlite3.Error, OSError) as failure:
        return len(rows), f"SQLite inbox: {failure}"
    except Exception as failure:  # answered as a 503 like any commit that failed, and logged here
        log.exception("SQLite inbox commit failed")
        return len(rows), f"SQLite inbox commit failed: {failure!r}"
    return [None if position in repeats else seqs.get((row[0], row[1])) for position, row in enumerate(rows)]


def run_writer_process(commit_rows: CommitRows) -> None:
    """The writer process's main: serve the parent over stdin and stdout until it closes stdin."""
    # Ctrl-C reaches the whole process group: the parent stops it by closing stdin, after its answers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    answers = os.dup(1)
    os.dup2(2, 1)  # the answers' pipe carries frames only: anything printed goes to stderr
    serve(commit_rows, reader=0, writer=answers)
