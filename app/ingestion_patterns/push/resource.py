"""The webhook inbox as a Dagster resource: the sensor and the landing asset read it through this."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import dagster as dg
from pydantic import Field

from .inbox import DEFAULT_LEASE_SECONDS, Inbox, open_inbox


class WebhookInboxResource(dg.ConfigurableResource):
    """The durable inbox the receiver writes to (``sqlite:///…`` or ``postgresql://…``)."""

    url: str
    lease_seconds: float = Field(
        default=DEFAULT_LEASE_SECONDS,
        gt=0,
        description="How long a claimed batch stays with its run; a run that dies without a word "
        "gives its rows back after this (a run Dagster reports failed, at once).",
    )

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Inbox]:
        """``async with webhook_inbox.open() as inbox:`` an open inbox on the caller's event loop,
        closed on the way out whatever happens (its threads and connections belong to that loop)."""
        inbox = open_inbox(self.url)
        try:
            await inbox.open()  # inside the try: a failed open has started threads or a pool too
            yield inbox
        finally:
            await inbox.close()
