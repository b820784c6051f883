"""Tables and landing of the push pattern: webhook payloads claimed from the inbox.

Every source lands in ``ingestion.webhook_data`` (keyed by ``source_id``) and ``webhook_rejects``,
unless its declaration names its own ``table``: then ``ingestion.<table>`` and ``<table>_rejects``,
of the same columns (``WebhookTables``).

A row is one inbox row: its ``inbox_seq`` and (source_id, event_id), the key the inbox deduplicates
on. Replaying a batch whose DuckDB commit succeeded but whose inbox ``mark_done`` did not is
harmless: the landing skips the rows it finds with the batch's own inbox seqs. ``webhook_data`` has
no primary key: a key over random event ids makes every batch walk an index that outgrows memory,
so landing slowed 16x from an empty table to 50M rows (docs/scale.md). An event the inbox accepts
twice (re-sent after ``WEBHOOK_INBOX_RETENTION`` forgot it) lands twice, and ``retention_job``'s
dedup (``dedupe_webhook_data``) keeps its first copy.

``land_claimed`` lands a claimed batch so that no single payload can fail it: a payload DuckDB
refuses (its JSON cast, say, for a payload accepted before the edge's rule) is isolated
(``warehouse.land_isolating``) and kept in ``webhook_rejects`` with DuckDB's message as its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime

import duckdb
import pyarrow as pa

from .. import warehouse
from ..warehouse import Column
from .inbox import InboxRecord

DATA_TABLE = "webhook_data"
REJECTS_TABLE = "webhook_rejects"

# Each table's columns, declared once: the DDL, the Arrow schema of a landed batch and the asset's
# column schema in the UI are all made from them.
DATA_COLUMNS = (
    Column("source_id", "VARCHAR", not_null=True),
    Column("event_id", "VARCHAR", not_null=True),
    Column("event_type", "VARCHAR"),
    Column("payload", "JSON", not_null=True),
    Column("headers", "JSON"),
    Column("inbox_seq", "BIGINT", not_null=True),
    Column("received_at", "TIMESTAMPTZ", not_null=True),
    Column("landed_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
    Column("run_id", "VARCHAR"),
)
REJECTS_COLUMNS = (
    Column("source_id", "VARCHAR", not_null=True),
    Column("event_id", "VARCHAR", not_null=True),
    Column("raw_body", "BLOB", not_null=True),
    Column("reason", "VARCHAR", not_null=True),
    Column("inbox_seq", "BIGINT", not_null=True),
    Column("received_at", "TIMESTAMPTZ", not_null=True),
    Column("rejected_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
    Column("run_id", "VARCHAR"),
)


@dataclass(frozen=True)
class WebhookTables:
    """Where a source's payloads land: its data table and its rejects table, in schema ``ingestion``."""

    data: str = DATA_TABLE
    rejects: str = REJECTS_TABLE

    @classmethod
    def named(cls, table: str | None) -> WebhookTables:
        """A declaration's ``table``: None is the shared ``webhook_data``; a name, its own pair."""
        return cls() if table is None else cls(table, f"{table}_rejects")

    @property
    def ddl(self) -> list[warehouse.DDLStep]:
        return [
            warehouse.create_table(self.data, DATA_COLUMNS),
            warehouse.without_primary_key(self.data, DATA_COLUMNS),  # files made before the key was dropped
            # Rejects keep the inbox's dedup key (they are few): a replayed reject collides with itself.
            warehouse.create_table(self.rejects, REJECTS_COLUMNS, ("source_id", "event_id")),
        ]


SHARED_TABLES = WebhookTables()
DDL: list[warehouse.DDLStep] = SHARED_TABLES.ddl


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
    refused: int = 0  # payloads DuckDB refused, kept as rejects with its reason (counted in ``rejected`` too)

    def __add__(self, other: WebhookLandResult) -> WebhookLandResult:
        return WebhookLandResult(
            self.inserted + other.inserted,
            self.rejected + other.rejected,
            self.already_landed + other.already_landed,
            self.refused + other.refused,
        )


# How a batch carries each DuckDB type (JSON travels as text and is cast on insert).
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "BLOB": pa.binary(),
    "BIGINT": pa.int64(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
}


def _batch_schema(record: type, declared: tuple[Column, ...]) -> pa.Schema:
    """The Arrow schema of a batch of ``record``s: its fields, typed as the table declares them (a
    field that is no column fails here, at import)."""
    types = {column.name: column.sql_type for column in declared}
    return pa.schema([(field.name, _ARROW_TYPES[types[field.name]]) for field in fields(record)])


_DATA_SCHEMA = _batch_schema(WebhookRow, DATA_COLUMNS)
_REJECT_SCHEMA = _batch_schema(WebhookReject, REJECTS_COLUMNS)


def land_webhook_batch(
    conn: duckdb.DuckDBPyConnection,
    rows: list[WebhookRow],
    rejects: list[WebhookReject],
    *,
    run_id: str,
    tables: WebhookTables = SHARED_TABLES,
) -> WebhookLandResult:
    """Land one claimed batch (valid rows and rejects) in ``tables``, in a single transaction.

    Rows already present (a replay after a crash between this commit and the inbox's mark-done)
    are skipped and counted as ``already_landed``: a replayed row carries the inbox seq it landed
    with, so the check reads only the row groups whose ``inbox_seq`` zone maps overlap the batch's
    seqs, whatever the table's size.
    """
    data = pa.Table.from_pylist([asdict(r) for r in rows], schema=_DATA_SCHEMA)  # noqa: F841 - scanned by name
    bad = pa.Table.from_pylist([asdict(r) for r in rejects], schema=_REJECT_SCHEMA)  # noqa: F841
    seqs = [row.inbox_seq for row in rows] or [0]
    with warehouse.transaction(conn):
        inserted = _changed(
            conn.execute(
                f"""
            INSERT INTO ingestion.{tables.data}
                (source_id, event_id, event_type, payload, headers, inbox_seq, received_at, run_id)
            SELECT source_id, event_id, event_type, payload::JSON, headers::JSON, inbox_seq, received_at, $run_id
            FROM data
            WHERE NOT EXISTS (
                SELECT 1 FROM ingestion.{tables.data} landed
                WHERE landed.inbox_seq BETWEEN $first_seq AND $last_seq
                  AND landed.inbox_seq = data.inbox_seq
                  AND landed.source_id = data.source_id AND landed.event_id = data.event_id)
            """,
                {"run_id": run_id, "first_seq": min(seqs), "last_seq": max(seqs)},
            )
        )
        rejected = _changed(
            conn.execute(
                f"""
            INSERT INTO ingestion.{tables.rejects}
                (source_id, event_id, raw_body, reason, inbox_seq, received_at, run_id)
            SELECT source_id, event_id, raw_body, reason, inbox_seq, received_at, ? FROM bad
            ON CONFLICT DO NOTHING
            """,
                [run_id],
            )
        )
    return WebhookLandResult(
        inserted=inserted,
        rejected=rejected,
        already_landed=len(rows) + len(rejects) - inserted - rejected,
    )


Split = Callable[[list[InboxRecord]], tuple[list[WebhookRow], list[WebhookReject]]]


def land_claimed(
    conn: duckdb.DuckDBPyConnection,
    records: list[InboxRecord],
    split: Split,
    *,
    run_id: str,
    tables: WebhookTables = SHARED_TABLES,
) -> tuple[int, WebhookLandResult]:
    """Validate (``split``) and land a claimed batch; returns how many of its records ended as
    rejects (invalid or refused) and the landing's result.

    One transaction when DuckDB takes every row; when it refuses a value, the batch is bisected
    (``warehouse.land_isolating``): the other records land, and each refused record becomes a
    reject whose reason is DuckDB's message. Either way every record ends as a row or a reject, so
    the whole batch may be marked done in the inbox afterwards."""

    def land(part: list[InboxRecord]) -> tuple[int, WebhookLandResult]:
        rows, rejects = split(part)
        return len(rejects), land_webhook_batch(conn, rows, rejects, run_id=run_id, tables=tables)

    def refuse(one: list[InboxRecord], reason: str) -> tuple[int, WebhookLandResult]:
        [record] = one
        reject = WebhookReject(record.source_id, record.event_id, record.body, reason, record.seq, record.received_at)
        result = land_webhook_batch(conn, [], [reject], run_id=run_id, tables=tables)
        return 1, result + WebhookLandResult(0, 0, 0, refused=1)

    results = warehouse.land_isolating(conn, records, land, refuse)
    total = WebhookLandResult(0, 0, 0)
    for _, result in results:
        total += result
    return sum(count for count, _ in results), total


def _changed(result: duckdb.DuckDBPyConnection) -> int:
    """The row count an INSERT reports."""
    row = result.fetchone()
    return int(row[0]) if row else 0
