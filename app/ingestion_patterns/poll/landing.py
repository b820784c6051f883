"""Tables and landing of the poll pattern: Kafka messages validated and landed in one pass.

Offsets are the truth. ``kafka_offsets`` holds, per topic and partition, the next offset to land;
it changes only in the transaction that lands the messages before it. So a crash before a commit
replays those messages, a crash after it never re-lands them, and Kafka's consumer-group offsets are
only a copy for the operators' tools.

Kafka itself is the durable log, so nothing is copied between the two assets: the poll step
records a small *poll plan* (``kafka_poll_plan``: per partition, the offset range to land), and
the process step reads exactly those ranges from Kafka, starting at the stored offsets. Each
fetched Arrow batch is validated in one vectorised SQL pass (DuckDB's JSON functions, never row by
row in Python) and lands with its rejects and its offsets in one transaction. Should DuckDB still
refuse a value in a batch (a message timestamp out of its range, say), the batch is bisected
(``warehouse.land_isolating``) and each refused message becomes a reject with DuckDB's message, so
no partition is ever stuck behind one message.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from .. import warehouse
from ..warehouse import Column
from .validate import JUDGE_BATCH

_HEADERS = 'STRUCT("key" VARCHAR, "value" BLOB)[]'

EVENTS_TABLE = "kafka_events"
PLAN_TABLE = "kafka_poll_plan"

# Each table's columns, declared once: the DDL below and the assets' column schema in the UI are
# both made from them, so they cannot drift.
EVENTS_COLUMNS = (
    Column("topic", "VARCHAR", not_null=True),
    Column("partition", "INTEGER", not_null=True),
    Column("offset", "BIGINT", not_null=True),
    Column("transaction_id", "VARCHAR", not_null=True),
    Column("account_id", "VARCHAR", not_null=True),
    Column("amount", "DOUBLE", not_null=True),
    Column("currency", "VARCHAR", not_null=True),
    Column("event_timestamp", "TIMESTAMPTZ", not_null=True),
    Column("merchant", "VARCHAR"),
    Column("channel", "VARCHAR"),
    Column("message_key", "BLOB"),
    Column("headers", _HEADERS),
    Column("message_timestamp", "TIMESTAMPTZ"),
    Column("landed_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
    Column("run_id", "VARCHAR"),
)
REJECTS_COLUMNS = (
    Column("topic", "VARCHAR", not_null=True),
    Column("partition", "INTEGER", not_null=True),
    Column("offset", "BIGINT", not_null=True),
    Column("message_key", "BLOB"),
    Column("raw_value", "BLOB"),
    Column("headers", _HEADERS),
    Column("reason", "VARCHAR", not_null=True),
    Column("message_timestamp", "TIMESTAMPTZ"),
    Column("rejected_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
    Column("run_id", "VARCHAR"),
)
OFFSETS_COLUMNS = (
    Column("topic", "VARCHAR", not_null=True),
    Column("partition", "INTEGER", not_null=True),
    Column("next_offset", "BIGINT", not_null=True),
    Column("updated_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
)
PLAN_COLUMNS = (
    Column("topic", "VARCHAR", not_null=True),
    Column("partition", "INTEGER", not_null=True),
    Column("from_offset", "BIGINT", not_null=True),  # the stored offset (or the log start) when the plan was made
    Column("to_offset", "BIGINT", not_null=True),  # land up to, not including, this offset
    Column("run_id", "VARCHAR"),
    Column("planned_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
)


DDL: list[str] = [
    warehouse.create_table(EVENTS_TABLE, EVENTS_COLUMNS, ("topic", "partition", "offset")),
    warehouse.create_table("kafka_rejects", REJECTS_COLUMNS, ("topic", "partition", "offset")),
    warehouse.create_table("kafka_offsets", OFFSETS_COLUMNS, ("topic", "partition")),
    warehouse.create_table(PLAN_TABLE, PLAN_COLUMNS, ("topic", "partition")),
]


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
    refused: int = 0  # messages DuckDB refused, landed as rejects with its message (counted in ``rejects``)

    def __add__(self, other: LandResult) -> LandResult:
        offsets = dict(self.next_offsets)
        for partition, offset in other.next_offsets.items():
            offsets[partition] = max(offset, offsets.get(partition, offset))
        return LandResult(
            self.events + other.events, self.rejects + other.rejects, offsets, self.refused + other.refused
        )


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
    offsets, so a batch holds no landed message; the primary keys fail the transaction if it did.

    When DuckDB refuses a value of the batch, it is bisected (``warehouse.land_isolating``): its
    parts land in offset order, each in its own transaction with its offsets, and each refused
    message lands as a reject whose reason is DuckDB's message, with its offset."""
    results = warehouse.land_isolating(
        conn,
        batch,
        lambda part: _land_judged(conn, topic, part, run_id),
        lambda one, reason: _land_refused(conn, topic, one, reason, run_id),
    )
    total = LandResult()
    for result in results:
        total += result
    return total


def _land_judged(conn: duckdb.DuckDBPyConnection, topic: str, batch: pa.Table, run_id: str) -> LandResult:
    kafka_incoming = batch  # noqa: F841 - scanned by name by DuckDB's Arrow replacement scan
    params = {"topic": topic, "run_id": run_id}
    with warehouse.transaction(conn):
        conn.execute(JUDGE_BATCH)
        events = warehouse.fetch_one(conn, _INSERT_EVENTS, params)[0]
        rejects = warehouse.fetch_one(conn, _INSERT_REJECTS, params)[0]
        next_offsets = dict(conn.execute(_ADVANCE_OFFSETS, {"topic": topic}).fetchall())
        conn.execute("DROP TABLE kafka_judged")
    return LandResult(events=events, rejects=rejects, next_offsets=next_offsets)


_INSERT_REFUSED = """
    INSERT INTO ingestion.kafka_rejects
        (topic, "partition", "offset", message_key, raw_value, headers, reason, message_timestamp, run_id)
    SELECT $topic, "partition", "offset", message_key, message_value, {headers}, $reason, {timestamp}, $run_id
    FROM kafka_refused
"""


def _land_refused(conn: duckdb.DuckDBPyConnection, topic: str, one: pa.Table, reason: str, run_id: str) -> LandResult:
    """Land one message DuckDB refused as a reject with ``reason``, and its offset. When its headers
    or timestamp are what DuckDB refuses, the reject keeps the rest (key, raw value, offset)."""
    try:
        return _land_reject_row(conn, topic, one, reason, run_id, whole=True)
    except warehouse.DATA_ERRORS:
        return _land_reject_row(
            conn,
            topic,
            one.select(["partition", "offset", "message_key", "message_value"]),
            reason,
            run_id,
            whole=False,
        )


def _land_reject_row(
    conn: duckdb.DuckDBPyConnection, topic: str, one: pa.Table, reason: str, run_id: str, *, whole: bool
) -> LandResult:
    kafka_refused = one  # noqa: F841 - scanned by name
    insert = _INSERT_REFUSED.format(
        headers="headers" if whole else "NULL", timestamp="message_timestamp" if whole else "NULL"
    )
    with warehouse.transaction(conn):
        conn.execute(insert, {"topic": topic, "reason": reason, "run_id": run_id})
        next_offsets = dict(
            conn.execute(_ADVANCE_OFFSETS.replace("kafka_judged", "kafka_refused"), {"topic": topic}).fetchall()
        )
    return LandResult(events=0, rejects=1, next_offsets=next_offsets, refused=1)


def reject_reasons(conn: duckdb.DuckDBPyConnection, topic: str, run_id: str) -> dict[str, int]:
    """Reject reason -> count, of what run ``run_id`` landed for ``topic``."""
    rows = conn.execute(
        "SELECT reason, count(*) FROM ingestion.kafka_rejects WHERE topic = ? AND run_id = ? GROUP BY 1 ORDER BY 1",
        [topic, run_id],
    ).fetchall()
    return dict(rows)


def landed_counts(conn: duckdb.DuckDBPyConnection, topic: str) -> dict[str, int]:
    """Events and rejects landed so far for ``topic``."""
    events, rejects = warehouse.fetch_one(
        conn,
        """
        SELECT (SELECT count(*) FROM ingestion.kafka_events WHERE topic = $t),
               (SELECT count(*) FROM ingestion.kafka_rejects WHERE topic = $t)
        """,
        {"t": topic},
    )
    return {"events": events, "rejects": rejects}
