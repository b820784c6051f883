"""An inbox that stores nothing: the benchmark's baseline for the receiver's own cost.

Selected only by the explicit URL ``noop://``; every put is "accepted" and immediately forgotten,
so a receiver running on it must never face real senders. The receiver logs a warning at start.
"""

from __future__ import annotations

from .base import InboxContextMixin, InboxRecord, NewWebhook, PendingSummary, PutResult


class NoopInbox(InboxContextMixin):
    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        pass

    async def put(self, item: NewWebhook) -> PutResult:
        return PutResult(True, item.event_id, None)

    async def pending(self, source_id: str) -> PendingSummary:
        return PendingSummary(source_id, 0, None, None)

    async def pending_sources(self) -> list[PendingSummary]:
        return []

    async def claim(self, source_id: str, limit: int) -> list[InboxRecord]:
        return []

    async def mark_done(self, source_id: str, seqs: list[int]) -> None:
        pass
