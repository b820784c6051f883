"""Tables and landing of the push pattern: webhook payloads claimed from the inbox.

Rows are keyed by (source_id, event_id), the same key the inbox deduplicates on, so replaying a
batch whose DuckDB commit succeeded but whose inbox ``mark_done`` did not is harmless.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from .. import warehouse

DDL: list[str] = [
    """
    CREATE TABLE IF NOT EXISTS ingestion.webhook_data (
        source_id   VARCHAR NOT NULL,
        event_id    VARCHAR NOT NULL,
        event_type  VARCHAR,
        payload     JSON NOT NULL,
        headers     JSON,
        inbox_seq   BIGINT NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        landed_at   TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        run_id      VARCHAR,
        PRIMARY KEY (source_id, event_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ingestion.webhook_rejects (
        source_id   VARCHAR NOT NULL,
        event_id    VARCHAR NOT NULL,
        raw_body    BLOB NOT NULL,
        reason      VARCHAR NOT NULL,
        inbox_seq   BIGINT NOT NULL,
        received_at TIMESTAMPTZ NOT NULL,
        rejected_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        run_id      VARCHAR,
        PRIMARY KEY (source_id, event_id)
    )
    """,
]


@dataclass(frozen=True)
class WebhookRow:
    """A payload that passed validation, ready to land."""

    source_id: str
    event_id: str
    event_type: str | None
    payload: str  # JSON text
    headers: str  # JSON text
    inbox_seq: int
    received_at: datetime


@dataclass(frozen=True)
class WebhookReject:
    """A payload that failed validation, kept with its raw body and the reason."""

    source_id: str
    event_id: str
    raw_body: bytes
    reason: str
    inbox_seq: int
    received_at: datetime


@dataclass(frozen=True)
class WebhookLandResult:
    inserted: int
    rejected: int
    already_landed: int


_DATA_SCHEMA = pa.schema(
    [
        ("source_id", pa.string()),
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("payload", pa.string()),
        ("headers", pa.string()),
        ("inbox_seq", pa.int64()),
        ("received_at", pa.timestamp("us", tz="UTC")),
    ]
)
_REJECT_SCHEMA = pa.schema(
    [
        ("source_id", pa.string()),
        ("event_id", pa.string()),
        ("raw_body", pa.binary()),
        ("reason", pa.string()),
        ("inbox_seq", pa.int64()),
        ("received_at", pa.timestamp("us", tz="UTC")),
    ]
)


def land_webhook_batch(
    conn: duckdb.DuckDBPyConnection,
    rows: list[WebhookRow],
    rejects: list[WebhookReject],
    *,
    run_id: str,
) -> WebhookLandResult:
    """Land one claimed batch (valid rows and rejects) in a single transaction.

    Rows already present (a replay after a crash between this commit and the inbox's mark-done)
    are skipped by the primary key and counted as ``already_landed``.
    """
    data = pa.Table.from_pylist([asdict(r) for r in rows], schema=_DATA_SCHEMA)  # noqa: F841 - scanned by name
    bad = pa.Table.from_pylist([asdict(r) for r in rejects], schema=_REJECT_SCHEMA)  # noqa: F841
    with warehouse.transaction(conn):
        inserted = conn.execute(
            """
            INSERT INTO ingestion.webhook_data
                (source_id, event_id, event_type, payload, headers, inbox_seq, received_at, run_id)
            SELECT source_id, event_id, event_type, payload::JSON, headers::JSON, inbox_seq, received_at, ?
            FROM data
            ON CONFLICT DO NOTHING
            """,
            [run_id],
        ).fetchone()[0]
        rejected = conn.execute(
            """
            INSERT INTO ingestion.webhook_rejects
                (source_id, event_id, raw_body, reason, inbox_seq, received_at, run_id)
            SELECT source_id, event_id, raw_body, reason, inbox_seq, received_at, ? FROM bad
            ON CONFLICT DO NOTHING
            """,
            [run_id],
        ).fetchone()[0]
    return WebhookLandResult(
        inserted=inserted,
        rejected=rejected,
        already_landed=len(rows) + len(rejects) - inserted - rejected,
    )
