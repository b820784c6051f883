"""An inbox that stores nothing: the benchmark's baseline for the receiver's own cost.

Selected only by the explicit URL ``noop://``; every put is "accepted" and immediately forgotten,
so a receiver running on it must never face real senders. The receiver logs a warning at start.
"""

from __future__ import annotations

from .base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_PURGE_BATCH_ROWS,
    InboxContextMixin,
    InboxRecord,
    InboxSizes,
    Lease,
    NewWebhook,
    PendingSummary,
    PurgeResult,
    PutResult,
    new_claim_owner,
)


class NoopInbox(InboxContextMixin):
    def __init__(self) -> None:
        self.owner = new_claim_owner()

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

    async def peek(self, source_id: str, limit: int) -> list[InboxRecord]:
        return []

    async def claim(
        self, source_id: str, limit: int, *, owner: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> list[InboxRecord]:
        return []

    async def renew(
        self, source_id: str, seqs: list[int], *, owner: str | None = None, lease_seconds: float = DEFAULT_LEASE_SECONDS
    ) -> int:
        return 0

    async def release(self, source_id: str, owner: str) -> int:
        return 0

    async def leases(self, source_id: str) -> list[Lease]:
        return []

    async def mark_done(self, source_id: str, seqs: list[int], *, owner: str | None = None) -> None:
        pass

    async def sizes(self) -> InboxSizes:
        return InboxSizes(0, 0, 0, None)

    async def purge_done(self, older_than_seconds: float, *, batch_rows: int = DEFAULT_PURGE_BATCH_ROWS) -> PurgeResult:
        return PurgeResult(0, 0)
