"""The retention windows as a Dagster resource (built from the settings in ``resources.py``)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from ..push.inbox import DEFAULT_PURGE_BATCH_ROWS

WEEK_SECONDS = 7 * 86_400.0


class RetentionResource(dg.ConfigurableResource):
    """How long landed data's staging copies are kept (seconds)."""

    webhook_inbox_seconds: float = Field(
        default=WEEK_SECONDS,
        gt=0,
        description="Landed (done) inbox rows older than this are deleted; within it a re-sent event id "
        "is a duplicate (WEBHOOK_INBOX_RETENTION).",
    )
    pull_raw_seconds: float = Field(
        default=WEEK_SECONDS,
        gt=0,
        description="raw_extract pages loaded into final_data and older than this are deleted (PULL_RAW_RETENTION).",
    )
    inbox_batch_rows: int = Field(
        default=DEFAULT_PURGE_BATCH_ROWS, ge=1, description="Inbox rows deleted per transaction."
    )
    pull_batch_pages: int = Field(default=100, ge=1, description="raw_extract pages deleted per transaction.")
