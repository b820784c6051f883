"""Tables and landing of the poll pattern: Kafka messages, staged raw, then validated and landed.

Offsets are the truth. ``kafka_offsets`` holds, per topic and partition, the next offset to land;
it changes only in the transaction that lands the messages before it. So a crash before a commit
replays those messages, a crash after it never re-lands them, and Kafka's consumer-group offsets are
only a copy for the operators' tools.

Between the two assets the raw messages wait in ``kafka_staging`` (in the warehouse, not on a
pod's disk), in numbered batches, each message with the verdict of validation: validation runs as
one vectorised SQL pass over each incoming Arrow batch (DuckDB's JSON functions), never row by row
in Python. A valid message is staged as its typed fields (what lands), a reject with its raw
bytes. Each batch then lands in one transaction with its offsets; landed batches leave staging
afterwards (a leftover is harmless: its offsets are below the stored ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

REQUIRED_FIELDS = ("transaction_id", "account_id", "amount", "currency", "timestamp")
_TEXT_FIELDS = ("transaction_id", "account_id", "currency", "timestamp")
# json_type() names of JSON numbers: integers by sign and size, then floating point.
_NUMBER_TYPES = ("UBIGINT", "BIGINT", "DOUBLE", "HUGEINT")

_HEADERS = 'STRUCT("key" VARCHAR, "value" BLOB)[]'

DDL: list[str] = [
    f"""
    CREATE TABLE IF NOT EXISTS ingestion.kafka_staging (
        batch_no          BIGINT NOT NULL,
        topic             VARCHAR NOT NULL,
        "partition"       INTEGER NOT NULL,
        "offset"          BIGINT NOT NULL,
        message_key       BLOB,
        message_value     BLOB,         -- raw bytes, kept for rejects (valid ones: their fields below)
        headers           {_HEADERS},
        message_timestamp TIMESTAMPTZ,
        run_id            VARCHAR,
        reason            VARCHAR,      -- why the message is rejected; NULL when it is valid
        transaction_id    VARCHAR,      -- the transaction's fields, set when it is valid
        account_id        VARCHAR,
        amount            DOUBLE,
        currency          VARCHAR,
        event_timestamp   TIMESTAMPTZ,
        merchant          VARCHAR,
        channel           VARCHAR
    )
    """,
    f"""
    CREATE TABLE IF NOT EXISTS ingestion.kafka_events (
        topic             VARCHAR NOT NULL,
        "partition"       INTEGER NOT NULL,
        "offset"          BIGINT NOT NULL,
        transaction_id    VARCHAR NOT NULL,
        account_id        VARCHAR NOT NULL,
        amount            DOUBLE NOT NULL,
        currency          VARCHAR NOT NULL,
        event_timestamp   TIMESTAMPTZ NOT NULL,
        merchant          VARCHAR,
        channel           VARCHAR,
        message_key       BLOB,
        headers           {_HEADERS},
        message_timestamp TIMESTAMPTZ,
        landed_at         TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        run_id            VARCHAR,
        PRIMARY KEY (topic, "partition", "offset")
    )
    """,
    f"""
    CREATE TABLE IF NOT EXISTS ingestion.kafka_rejects (
        topic             VARCHAR NOT NULL,
        "partition"       INTEGER NOT NULL,
        "offset"          BIGINT NOT NULL,
        message_key       BLOB,
        raw_value         BLOB,
        headers           {_HEADERS},
        reason            VARCHAR NOT NULL,
        message_timestamp TIMESTAMPTZ,
        rejected_at       TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        run_id            VARCHAR,
        PRIMARY KEY (topic, "partition", "offset")
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS ingestion.kafka_offsets (
        topic       VARCHAR NOT NULL,
        "partition" INTEGER NOT NULL,
        next_offset BIGINT NOT NULL,
        updated_at  TIMESTAMPTZ NOT NULL DEFAULT current_timestamp,
        PRIMARY KEY (topic, "partition")
    )
    """,
]

# The Arrow schema of a batch handed to ``stage_batch`` (what the poller builds from aiokafka records).
STAGING_SCHEMA = pa.schema(
    [
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("message_key", pa.binary()),
        ("message_value", pa.binary()),
        ("headers", pa.list_(pa.struct([("key", pa.string()), ("value", pa.binary())]))),
        ("message_timestamp", pa.timestamp("ms", tz="UTC")),
    ]
)


# The fields extracted from each message, in this order: the required ones, then the optional ones.
_EXTRACTED = (*REQUIRED_FIELDS, "merchant", "channel")
_AT = {name: i + 1 for i, name in enumerate(_EXTRACTED)}  # SQL lists count from 1


def _rejection_reason_sql() -> str:
    """A SQL expression over the columns ``text`` (NULL if not UTF-8), ``ok`` (valid JSON),
    ``is_object``, ``t`` (json types of the fields) and ``v`` (their text): why the message is not a
    valid transaction, or NULL when it is."""
    missing = ", ".join(
        f"CASE WHEN coalesce(t[{_AT[name]}], 'NULL') = 'NULL' THEN '{name}' END" for name in REQUIRED_FIELDS
    )
    not_text = ", ".join(
        f"CASE WHEN t[{_AT[name]}] <> 'VARCHAR' THEN '{name}' END" for name in _TEXT_FIELDS
    )
    numbers = ", ".join(f"'{t}'" for t in _NUMBER_TYPES)
    return f"""
        CASE
            WHEN message_value IS NULL THEN 'no value (a tombstone)'
            WHEN text IS NULL THEN 'value is not UTF-8 text'
            WHEN NOT ok THEN 'malformed JSON'
            WHEN NOT is_object THEN 'not a JSON object'
            WHEN concat_ws(', ', {missing}) <> '' THEN 'missing field(s): ' || concat_ws(', ', {missing})
            WHEN concat_ws(', ', {not_text}) <> '' THEN 'not a string: ' || concat_ws(', ', {not_text})
            WHEN t[{_AT['amount']}] NOT IN ({numbers}) THEN 'amount is not a number'
            WHEN CAST(v[{_AT['amount']}] AS DOUBLE) < 0 THEN 'negative amount'
            WHEN TRY_CAST(v[{_AT['timestamp']}] AS TIMESTAMPTZ) IS NULL THEN 'timestamp is not an ISO 8601 time'
        END
    """


_FIELD_TYPES = {"amount": "DOUBLE", "timestamp": "TIMESTAMPTZ"}


def _typed_field(name: str) -> str:
    """The column of field ``name`` for a valid message (NULL for a reject)."""
    value = f"v[{_AT[name]}]"
    if name in _FIELD_TYPES:
        value = f"TRY_CAST({value} AS {_FIELD_TYPES[name]})"
    return f"CASE WHEN reason IS NULL THEN {value} END"


def _paths(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'$.{name}'" for name in names) + "]"


# Staging one batch: decode, parse and validate every message in one vectorised pass over the
# incoming Arrow batch, keeping the raw message beside the verdict. It runs in the poller's worker
# thread, overlapped with the next fetch, so landing has only rows to move.
_STAGE_BATCH = f"""
    INSERT INTO ingestion.kafka_staging
    WITH decoded AS (
        SELECT *, try(decode(message_value)) AS text FROM kafka_incoming
    ),
    parsed AS (
        SELECT *, coalesce(json_valid(text), false) AS ok FROM decoded
    ),
    typed AS (
        SELECT *,
               -- valid JSON that starts with a brace is an object: no need to parse it once more
               ok AND starts_with(ltrim(text, chr(32) || chr(9) || chr(10) || chr(13)), '{{') AS is_object,
               CASE WHEN ok THEN json_type(text, {_paths(REQUIRED_FIELDS)}) END AS t,
               CASE WHEN ok THEN json_extract_string(text, {_paths(_EXTRACTED)}) END AS v
        FROM parsed
    ),
    judged AS (
        SELECT *, {_rejection_reason_sql()} AS reason FROM typed
    )
    SELECT $batch_no, $topic, "partition", "offset", message_key,
           CASE WHEN reason IS NOT NULL THEN message_value END,
           headers, message_timestamp, $run_id, reason,
           {", ".join(_typed_field(name) for name in _EXTRACTED)}
    FROM judged
"""

# Rows of the batch not landed yet: a replay after a crash skips offsets below the stored next one.
_PENDING = """
    FROM ingestion.kafka_staging s
    LEFT JOIN ingestion.kafka_offsets o USING (topic, "partition")
    WHERE s.batch_no = $batch_no AND s."offset" >= coalesce(o.next_offset, 0)
"""

_INSERT_EVENTS = f"""
    INSERT INTO ingestion.kafka_events
        (topic, "partition", "offset", transaction_id, account_id, amount, currency, event_timestamp,
         merchant, channel, message_key, headers, message_timestamp, run_id)
    SELECT topic, "partition", "offset", transaction_id, account_id, amount, currency, event_timestamp,
           merchant, channel, message_key, headers, message_timestamp, $run_id
    {_PENDING} AND s.reason IS NULL
"""

_INSERT_REJECTS = f"""
    INSERT INTO ingestion.kafka_rejects
        (topic, "partition", "offset", message_key, raw_value, headers, reason, message_timestamp, run_id)
    SELECT topic, "partition", "offset", message_key, message_value, headers, reason, message_timestamp, $run_id
    {_PENDING} AND s.reason IS NOT NULL
"""

_REASONS = f"""SELECT reason, count(*) {_PENDING} AND s.reason IS NOT NULL GROUP BY reason"""

_ADVANCE_OFFSETS = """
    INSERT INTO ingestion.kafka_offsets (topic, "partition", next_offset)
    SELECT topic, "partition", max("offset") + 1 FROM ingestion.kafka_staging WHERE batch_no = $batch_no
    GROUP BY topic, "partition"
    ON CONFLICT (topic, "partition") DO UPDATE
        SET next_offset = greatest(next_offset, excluded.next_offset), updated_at = now()
"""


@dataclass
class LandResult:
    """What one ``land_staged_batch`` call committed."""

    batch_no: int
    events: int = 0
    rejects: int = 0
    already_landed: int = 0
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)


def stored_offsets(conn: duckdb.DuckDBPyConnection, topic: str) -> dict[int, int]:
    """Partition -> next offset to land, as committed with the data."""
    rows = conn.execute(
        'SELECT "partition", next_offset FROM ingestion.kafka_offsets WHERE topic = ?', [topic]
    ).fetchall()
    return dict(rows)


def restart_staging(conn: duckdb.DuckDBPyConnection, topic: str) -> int:
    """Drop whatever an earlier poll of ``topic`` staged (it is re-read from the stored offsets)
    and return the first free batch number."""
    conn.execute("DELETE FROM ingestion.kafka_staging WHERE topic = ?", [topic])
    return conn.execute("SELECT coalesce(max(batch_no), 0) + 1 FROM ingestion.kafka_staging").fetchone()[0]


def stage_batch(conn: duckdb.DuckDBPyConnection, batch_no: int, topic: str, batch: pa.Table, *, run_id: str = "") -> int:
    """Append one Arrow batch of raw messages (``STAGING_SCHEMA``) to staging, each with its
    validation verdict; returns its row count."""
    kafka_incoming = batch  # noqa: F841 - scanned by name by DuckDB's Arrow replacement scan
    conn.execute(_STAGE_BATCH, {"batch_no": batch_no, "topic": topic, "run_id": run_id})
    return batch.num_rows


def staged_batches(conn: duckdb.DuckDBPyConnection) -> list[int]:
    """Batch numbers waiting in staging, oldest first."""
    return [row[0] for row in conn.execute("SELECT DISTINCT batch_no FROM ingestion.kafka_staging ORDER BY 1").fetchall()]


def land_staged_batch(conn: duckdb.DuckDBPyConnection, batch_no: int, *, run_id: str = "") -> LandResult:
    """Land staged (and validated) batch ``batch_no`` in ONE transaction: valid rows into
    ``kafka_events``, the rest into ``kafka_rejects`` with the reason, and the partitions' next
    offsets into ``kafka_offsets``. Replays skip offsets already landed. ``clear_staging`` removes
    landed batches afterwards."""
    result = LandResult(batch_no=batch_no)
    params = {"batch_no": batch_no}
    with_run = {**params, "run_id": run_id}
    conn.execute("BEGIN TRANSACTION")
    try:
        staged = conn.execute(
            "SELECT count(*) FROM ingestion.kafka_staging WHERE batch_no = ?", [batch_no]
        ).fetchone()[0]
        result.reasons = dict(conn.execute(_REASONS, params).fetchall())
        result.events = conn.execute(_INSERT_EVENTS, with_run).fetchone()[0]
        result.rejects = conn.execute(_INSERT_REJECTS, with_run).fetchone()[0]
        conn.execute(_ADVANCE_OFFSETS, params)
        result.next_offsets = {
            (topic, partition): offset
            for topic, partition, offset in conn.execute(
                """
                SELECT topic, "partition", next_offset FROM ingestion.kafka_offsets
                WHERE (topic, "partition") IN
                      (SELECT DISTINCT topic, "partition" FROM ingestion.kafka_staging WHERE batch_no = ?)
                """,
                [batch_no],
            ).fetchall()
        }
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    result.already_landed = staged - result.events - result.rejects
    return result


def clear_staging(conn: duckdb.DuckDBPyConnection, batch_nos: list[int]) -> None:
    """Remove landed batches from staging, all at once: a delete per landing transaction costs
    more than the landing itself, and a landed batch left behind is harmless (its offsets are
    below the stored ones, so a replay skips it, and the next poll clears staging anyway)."""
    if batch_nos:
        conn.execute("DELETE FROM ingestion.kafka_staging WHERE batch_no BETWEEN ? AND ?", [min(batch_nos), max(batch_nos)])


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
