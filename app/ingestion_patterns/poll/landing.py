"""Tables and landing of the poll pattern: Kafka messages validated and landed in one pass.

Offsets are the truth. ``kafka_offsets`` holds, per topic and partition, the next offset to land;
it changes only in the transaction that lands the messages before it. So a crash before a commit
replays those messages, a crash after it never re-lands them, and Kafka's consumer-group offsets are
only a copy for the operators' tools.

Kafka itself is the durable log, so nothing is copied between the two assets: the poll step
records a small *poll plan* (``kafka_poll_plan``: per partition, the offset range to land), and
the process step reads exactly those ranges from Kafka, starting at the stored offsets. Each
fetched Arrow batch is validated in one vectorised SQL pass (DuckDB's JSON functions, never row by
row in Python) and lands with its rejects and its offsets in one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from .. import warehouse
from .validate import JUDGE_BATCH

if TYPE_CHECKING:
    from dagster_duckdb import DuckDBResource

_HEADERS = 'STRUCT("key" VARCHAR, "value" BLOB)[]'

EVENTS_TABLE = "kafka_events"
PLAN_TABLE = "kafka_poll_plan"

# Each table's columns, declared once: (name, DuckDB type, constraint). The DDL below and the
# assets' column schema in the UI (``columns``) are both made from them, so they cannot drift.
EVENTS_COLUMNS = (
    ("topic", "VARCHAR", "NOT NULL"),
    ("partition", "INTEGER", "NOT NULL"),
    ("offset", "BIGINT", "NOT NULL"),
    ("transaction_id", "VARCHAR", "NOT NULL"),
    ("account_id", "VARCHAR", "NOT NULL"),
    ("amount", "DOUBLE", "NOT NULL"),
    ("currency", "VARCHAR", "NOT NULL"),
    ("event_timestamp", "TIMESTAMPTZ", "NOT NULL"),
    ("merchant", "VARCHAR", ""),
    ("channel", "VARCHAR", ""),
    ("message_key", "BLOB", ""),
    ("headers", _HEADERS, ""),
    ("message_timestamp", "TIMESTAMPTZ", ""),
    ("landed_at", "TIMESTAMPTZ", "NOT NULL DEFAULT current_timestamp"),
    ("run_id", "VARCHAR", ""),
)
REJECTS_COLUMNS = (
    ("topic", "VARCHAR", "NOT NULL"),
    ("partition", "INTEGER", "NOT NULL"),
    ("offset", "BIGINT", "NOT NULL"),
    ("message_key", "BLOB", ""),
    ("raw_value", "BLOB", ""),
    ("headers", _HEADERS, ""),
    ("reason", "VARCHAR", "NOT NULL"),
    ("message_timestamp", "TIMESTAMPTZ", ""),
    ("rejected_at", "TIMESTAMPTZ", "NOT NULL DEFAULT current_timestamp"),
    ("run_id", "VARCHAR", ""),
)
OFFSETS_COLUMNS = (
    ("topic", "VARCHAR", "NOT NULL"),
    ("partition", "INTEGER", "NOT NULL"),
    ("next_offset", "BIGINT", "NOT NULL"),
    ("updated_at", "TIMESTAMPTZ", "NOT NULL DEFAULT current_timestamp"),
)
PLAN_COLUMNS = (
    ("topic", "VARCHAR", "NOT NULL"),
    ("partition", "INTEGER", "NOT NULL"),
    ("from_offset", "BIGINT", "NOT NULL"),  # the stored offset (or the log start) when the plan was made
    ("to_offset", "BIGINT", "NOT NULL"),  # land up to, not including, this offset
    ("run_id", "VARCHAR", ""),
    ("planned_at", "TIMESTAMPTZ", "NOT NULL DEFAULT current_timestamp"),
)


def columns(declared: tuple[tuple[str, str, str], ...]) -> list[tuple[str, str]]:
    """(name, type) of declared columns, for ``dagster_conventions.table_metadata``."""
    return [(name, type_) for name, type_, _ in declared]


def _create_table(table: str, declared: tuple[tuple[str, str, str], ...], primary_key: tuple[str, ...]) -> str:
    # Every name quoted: "partition" and "offset" are SQL keywords.
    lines = [" ".join(filter(None, (f'"{name}"', type_, constraint))) for name, type_, constraint in declared]
    lines.append("PRIMARY KEY (" + ", ".join(f'"{name}"' for name in primary_key) + ")")
    return f"CREATE TABLE IF NOT EXISTS ingestion.{table} (\n    " + ",\n    ".join(lines) + "\n)"


DDL: list[str] = [
    _create_table(EVENTS_TABLE, EVENTS_COLUMNS, ("topic", "partition", "offset")),
    _create_table("kafka_rejects", REJECTS_COLUMNS, ("topic", "partition", "offset")),
    _create_table("kafka_offsets", OFFSETS_COLUMNS, ("topic", "partition")),
    _create_table(PLAN_TABLE, PLAN_COLUMNS, ("topic", "partition")),
]


@asynccontextmanager
async def warehouse_session(resource: DuckDBResource) -> AsyncIterator[duckdb.DuckDBPyConnection]:
    """``warehouse.session`` with these tables, entered and left in a worker thread: connecting runs
    the DDL and closing may checkpoint the WAL, blocking calls that must not stall the event loop."""
    manager = warehouse.session(resource, DDL)
    conn = await asyncio.to_thread(manager.__enter__)
    try:
        yield conn
    except BaseException as error:
        if not await asyncio.to_thread(manager.__exit__, type(error), error, error.__traceback__):
            raise
    else:
        await asyncio.to_thread(manager.__exit__, None, None, None)


# The Arrow schema of a batch handed to ``land_batch`` (what the consumer builds from aiokafka records).
INCOMING_SCHEMA = pa.schema(
    [
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("message_key", pa.binary()),
        ("message_value", pa.binary()),
        ("headers", pa.list_(pa.struct([("key", pa.string()), ("value", pa.binary())]))),
        ("message_timestamp", pa.timestamp("ms", tz="UTC")),
    ]
)


_INSERT_EVENTS = """
    INSERT INTO ingestion.kafka_events
        (topic, "partition", "offset", transaction_id, account_id, amount, currency, event_timestamp,
         merchant, channel, message_key, headers, message_timestamp, run_id)
    SELECT $topic, "partition", "offset", transaction_id, account_id, amount, currency, "timestamp",
           merchant, channel, message_key, headers, message_timestamp, $run_id
    FROM kafka_judged WHERE reason IS NULL
"""

_INSERT_REJECTS = """
    INSERT INTO ingestion.kafka_rejects
        (topic, "partition", "offset", message_key, raw_value, headers, reason, message_timestamp, run_id)
    SELECT $topic, "partition", "offset", message_key, message_value, headers, reason, message_timestamp, $run_id
    FROM kafka_judged WHERE reason IS NOT NULL
"""

_ADVANCE_OFFSETS = """
    INSERT INTO ingestion.kafka_offsets (topic, "partition", next_offset)
    SELECT $topic, "partition", max("offset") + 1 FROM kafka_judged GROUP BY "partition"
    ON CONFLICT (topic, "partition") DO UPDATE
        SET next_offset = greatest(next_offset, excluded.next_offset), updated_at = now()
    RETURNING "partition", next_offset
"""


@dataclass
class LandResult:
    """What one ``land_batch`` call committed."""

    events: int = 0
    rejects: int = 0
    next_offsets: dict[int, int] = field(default_factory=dict)  # partition -> next offset to land


def stored_offsets(conn: duckdb.DuckDBPyConnection, topic: str) -> dict[int, int]:
    """Partition -> next offset to land, as committed with the data."""
    rows = conn.execute(
        'SELECT "partition", next_offset FROM ingestion.kafka_offsets WHERE topic = ?', [topic]
    ).fetchall()
    return dict(rows)


def save_poll_plan(
    conn: duckdb.DuckDBPyConnection, topic: str, ranges: dict[int, tuple[int, int]], *, run_id: str = ""
) -> None:
    """Replace the poll plan of ``topic``: partition -> (from offset, to offset) to land next."""
    rows = [(topic, partition, start, end, run_id) for partition, (start, end) in sorted(ranges.items())]
    with warehouse.transaction(conn):
        conn.execute("DELETE FROM ingestion.kafka_poll_plan WHERE topic = ?", [topic])
        if rows:
            conn.executemany(
                'INSERT INTO ingestion.kafka_poll_plan (topic, "partition", from_offset, to_offset, run_id) '
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )


def poll_plan(conn: duckdb.DuckDBPyConnection, topic: str) -> dict[int, tuple[int, int]]:
    """The latest poll plan of ``topic``: partition -> (from offset, to offset)."""
    rows = conn.execute(
        'SELECT "partition", from_offset, to_offset FROM ingestion.kafka_poll_plan WHERE topic = ? ORDER BY 1',
        [topic],
    ).fetchall()
    return {partition: (start, end) for partition, start, end in rows}


def land_batch(conn: duckdb.DuckDBPyConnection, topic: str, batch: pa.Table, *, run_id: str = "") -> LandResult:
    """Validate one Arrow batch of raw messages (``INCOMING_SCHEMA``) and land it in ONE
    transaction: valid rows into ``kafka_events``, the rest into ``kafka_rejects`` with the reason,
    and the partitions' next offsets into ``kafka_offsets``. The caller reads from the stored
    offsets, so a batch holds no landed message; the primary keys fail the transaction if it did."""
    kafka_incoming = batch  # noqa: F841 - scanned by name by DuckDB's Arrow replacement scan
    params = {"topic": topic, "run_id": run_id}
    with warehouse.transaction(conn):
        conn.execute(JUDGE_BATCH)
        events = conn.execute(_INSERT_EVENTS, params).fetchone()[0]
        rejects = conn.execute(_INSERT_REJECTS, params).fetchone()[0]
        next_offsets = dict(conn.execute(_ADVANCE_OFFSETS, {"topic": topic}).fetchall())
        conn.execute("DROP TABLE kafka_judged")
    return LandResult(events=events, rejects=rejects, next_offsets=next_offsets)


def reject_reasons(conn: duckdb.DuckDBPyConnection, topic: str, run_id: str) -> dict[str, int]:
    """Reject reason -> count, of what run ``run_id`` landed for ``topic``."""
    rows = conn.execute(
        "SELECT reason, count(*) FROM ingestion.kafka_rejects WHERE topic = ? AND run_id = ? GROUP BY 1 ORDER BY 1",
        [topic, run_id],
    ).fetchall()
    return dict(rows)


def landed_counts(conn: duckdb.DuckDBPyConnection, topic: str) -> dict[str, int]:
    """Events and rejects landed so far for ``topic``."""
    events, rejects = conn.execute(
        """
        SELECT (SELECT count(*) FROM ingestion.kafka_events WHERE topic = $t),
               (SELECT count(*) FROM ingestion.kafka_rejects WHERE topic = $t)
        """,
        {"t": topic},
    ).fetchone()
    return {"events": events, "rejects": rejects}
