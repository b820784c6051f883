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
import pyarrow.compute as pc

from .. import warehouse
from ..warehouse import ARROW_TYPES
from .avro import AvroColumn, AvroDecoder, WriterSchema, wire_header, wire_headers
from .contract import OFFSETS_COLUMNS, PLAN_COLUMNS, PLAN_TABLE, REJECTS_COLUMNS, TopicContract
from .source import shipped_topic
from .validate import DECODE_REASON, judge_sql

# The shipped reference instance (defs/kafka_topics/transactions/defs.yaml): what the functions below
# land when no contract is given, in ingestion.kafka_events and ingestion.kafka_rejects.
TRANSACTIONS = TopicContract.of(shipped_topic("transactions"))
EVENTS_TABLE = TRANSACTIONS.events_table
EVENTS_COLUMNS = TRANSACTIONS.events_columns
DDL = TRANSACTIONS.ddl
# Shared by every topic (keyed by topic), re-exported for the callers of this module.
__all__ = ["OFFSETS_COLUMNS", "PLAN_COLUMNS", "PLAN_TABLE", "REJECTS_COLUMNS"]


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


def _insert_events(contract: TopicContract) -> str:
    names = ", ".join(f'"{c.name}"' for c in contract.columns)
    kept = ", ".join(contract.message_columns)
    return f"""
    INSERT INTO ingestion.{contract.events_table} (topic, "partition", "offset", {names}, {kept}, run_id)
    SELECT $topic, "partition", "offset", {names}, {kept}, $run_id
    FROM kafka_judged WHERE reason IS NULL
    """


def _insert_rejects(contract: TopicContract, source: str = "kafka_judged", reason: str = "reason") -> str:
    return f"""
    INSERT INTO ingestion.{contract.rejects_table}
        (topic, "partition", "offset", message_key, raw_value, headers, reason, message_timestamp, run_id)
    SELECT $topic, "partition", "offset", message_key, message_value, {{headers}}, {reason}, {{timestamp}}, $run_id
    FROM {source} WHERE {reason} IS NOT NULL
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


def land_batch(
    conn: duckdb.DuckDBPyConnection,
    topic: str,
    batch: pa.Table,
    *,
    run_id: str = "",
    contract: TopicContract = TRANSACTIONS,
    schemas: dict[int, WriterSchema] | None = None,
) -> LandResult:
    """Validate one Arrow batch of raw messages (``INCOMING_SCHEMA``; an Avro topic's with its decoded
    columns beside, ``avro_batch``) and land it in ONE transaction: valid rows into the contract's events
    table, the rest into its rejects table with the reason, and the partitions' next offsets into
    ``kafka_offsets``. The caller reads from the stored offsets, so a batch holds no landed message;
    the primary keys fail the transaction if it did.

    When DuckDB refuses a value of the batch, it is bisected (``warehouse.land_isolating``): its
    parts land in offset order, each in its own transaction with its offsets, and each refused
    message lands as a reject whose reason is DuckDB's message, with its offset."""
    if contract.value_format == "avro":
        batch = with_decoded(batch, contract, schemas or {})
    statements = _statements(contract)
    results = warehouse.land_isolating(
        conn,
        batch,
        lambda part: _land_judged(conn, topic, part, run_id, statements),
        lambda one, reason: _land_refused(conn, topic, one, reason, run_id, contract),
    )
    total = LandResult()
    for result in results:
        total += result
    return total


def compile_contract(contract: TopicContract) -> None:
    """Judge and land an empty batch in an in-memory DuckDB: a row check that does not compile (an unknown
    column, a syntax error) raises DuckDB's error now, when the definitions load, not in a run."""
    conn = duckdb.connect(":memory:")
    try:
        warehouse.ensure_schema(conn, contract.ddl)
        land_batch(conn, "", INCOMING_SCHEMA.empty_table(), contract=contract)
    finally:
        conn.close()


def schema_ids(batch: pa.Table) -> set[int]:
    """The writer schema ids an Avro batch's values name (what to ask the registry for before landing it):
    the distinct 5-byte heads of the values, read in Arrow, then only those few in Python."""
    heads = pc.unique(pc.binary_slice(batch.column("message_value"), 0, 5)).to_pylist()
    return {schema_id for schema_id, _ in map(wire_header, heads) if schema_id is not None}


_DECODERS: dict[TopicContract, AvroDecoder] = {}


def with_decoded(batch: pa.Table, contract: TopicContract, schemas: dict[int, WriterSchema]) -> pa.Table:
    """An Avro batch with its values decoded beside it (``avro.AvroDecoder``, by the writer schemas given):
    the declared columns, and DECODE_REASON (null: decoded), which the judging pass reads."""
    if contract not in _DECODERS:
        _DECODERS[contract] = AvroDecoder(
            [
                AvroColumn(c.name, ARROW_TYPES[c.type], field=c.source_path, required=c.required)
                for c in contract.columns
            ]
        )
    values = batch.column("message_value")
    decoded = _DECODERS[contract].decode(values.to_pylist(), schemas, wire_headers(values))
    for name, column in zip(decoded.table.column_names, decoded.table.columns, strict=True):
        batch = batch.append_column(name, column)
    return batch.append_column(DECODE_REASON, decoded.reasons)


_STATEMENTS: dict[TopicContract, tuple[str, str, str]] = {}


def _statements(contract: TopicContract) -> tuple[str, str, str]:
    """The judging statement and the two inserts of ``contract``, made once per contract."""
    if contract not in _STATEMENTS:
        rejects = _insert_rejects(contract).format(headers="headers", timestamp="message_timestamp")
        _STATEMENTS[contract] = (judge_sql(contract), _insert_events(contract), rejects)
    return _STATEMENTS[contract]


def _land_judged(
    conn: duckdb.DuckDBPyConnection, topic: str, batch: pa.Table, run_id: str, statements: tuple[str, str, str]
) -> LandResult:
    kafka_incoming = batch  # noqa: F841 - scanned by name by DuckDB's Arrow replacement scan
    judge, insert_events, insert_rejects = statements
    params = {"topic": topic, "run_id": run_id}
    with warehouse.transaction(conn):
        conn.execute(judge)
        events = warehouse.fetch_one(conn, insert_events, params)[0]
        rejects = warehouse.fetch_one(conn, insert_rejects, params)[0]
        next_offsets = dict(conn.execute(_ADVANCE_OFFSETS, {"topic": topic}).fetchall())
        conn.execute("DROP TABLE kafka_judged")
    return LandResult(events=events, rejects=rejects, next_offsets=next_offsets)


def _land_refused(
    conn: duckdb.DuckDBPyConnection, topic: str, one: pa.Table, reason: str, run_id: str, contract: TopicContract
) -> LandResult:
    """Land one message DuckDB refused as a reject with ``reason``, and its offset. When its headers
    or timestamp are what DuckDB refuses, the reject keeps the rest (key, raw value, offset)."""
    try:
        return _land_reject_row(conn, topic, one, reason, run_id, contract, whole=True)
    except warehouse.DATA_ERRORS:
        return _land_reject_row(
            conn,
            topic,
            one.select(["partition", "offset", "message_key", "message_value"]),
            reason,
            run_id,
            contract,
            whole=False,
        )


def _land_reject_row(
    conn: duckdb.DuckDBPyConnection,
    topic: str,
    one: pa.Table,
    reason: str,
    run_id: str,
    contract: TopicContract,
    *,
    whole: bool,
) -> LandResult:
    kafka_refused = one  # noqa: F841 - scanned by name
    insert = _insert_rejects(contract, "kafka_refused", "$reason").format(
        headers="headers" if whole else "NULL", timestamp="message_timestamp" if whole else "NULL"
    )
    with warehouse.transaction(conn):
        conn.execute(insert, {"topic": topic, "reason": reason, "run_id": run_id})
        next_offsets = dict(
            conn.execute(_ADVANCE_OFFSETS.replace("kafka_judged", "kafka_refused"), {"topic": topic}).fetchall()
        )
    return LandResult(events=0, rejects=1, next_offsets=next_offsets, refused=1)


def reject_reasons(
    conn: duckdb.DuckDBPyConnection, topic: str, run_id: str, contract: TopicContract = TRANSACTIONS
) -> dict[str, int]:
    """Reject reason -> count, of what run ``run_id`` landed for ``topic``."""
    rows = conn.execute(
        f"SELECT reason, count(*) FROM ingestion.{contract.rejects_table} WHERE topic = ? AND run_id = ? "
        "GROUP BY 1 ORDER BY 1",
        [topic, run_id],
    ).fetchall()
    return dict(rows)


def landed_counts(
    conn: duckdb.DuckDBPyConnection, topic: str, contract: TopicContract = TRANSACTIONS
) -> dict[str, int]:
    """Events and rejects landed so far for ``topic``."""
    events, rejects = warehouse.fetch_one(
        conn,
        f"""
        SELECT (SELECT count(*) FROM ingestion.{contract.events_table} WHERE topic = $t),
               (SELECT count(*) FROM ingestion.{contract.rejects_table} WHERE topic = $t)
        """,
        {"t": topic},
    )
    return {"events": events, "rejects": rejects}
