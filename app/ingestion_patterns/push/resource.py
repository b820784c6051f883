"""The webhook inbox as a Dagster resource: the sensor and the landing asset read it through this."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import dagster as dg

from .inbox import Inbox, PendingSummary, open_inbox

T = TypeVar("T")


class WebhookInboxResource(dg.ConfigurableResource):
    """The durable inbox the receiver writes to (``sqlite:///…`` or ``postgresql://…``)."""

    url: str

    def run(self, operation: Callable[[Inbox], Awaitable[T]]) -> T:
        """Open the inbox, await ``operation(inbox)`` and close it again, from synchronous code."""

        async def with_inbox() -> T:
            inbox = open_inbox(self.url)
            await inbox.open()
            try:
                return await operation(inbox)
            finally:
                await inbox.close()

        return asyncio.run(with_inbox())

    def pending_sources(self) -> list[PendingSummary]:
        return self.run(lambda inbox: inbox.pending_sources())
