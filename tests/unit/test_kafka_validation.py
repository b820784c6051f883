"""Validation of staged Kafka messages: the verdict DuckDB's vectorised pass gives each message
(in-memory DuckDB, no files), and the landing that follows it."""

import json

import duckdb
import pyarrow as pa
import pytest

from ingestion_patterns import warehouse
from ingestion_patterns.warehouse import kafka as wk

VALID = {
    "transaction_id": "txn-1", "account_id": "acct-1", "amount": 12.5, "currency": "EUR",
    "timestamp": "2026-11-26T07:00:00+00:00", "merchant": "bakery", "channel": "card",
}


def _without(name):
    return {k: v for k, v in VALID.items() if k != name}


CASES = [
    (json.dumps(VALID).encode(), None),
    (json.dumps({**VALID, "amount": 0}).encode(), None),
    (json.dumps({**VALID, "amount": 7}).encode(), None),
    (json.dumps(_without("merchant")).encode(), None),
    (b'{"transaction_id": "txn-1", "amo', "malformed JSON"),
    (b"", "malformed JSON"),
    (b"\xff\xfe{}", "value is not UTF-8 text"),
    (None, "no value (a tombstone)"),
    (b"[1, 2, 3]", "not a JSON object"),
    (b'"just a string"', "not a JSON object"),
    (json.dumps({**VALID, "amount": -0.01}).encode(), "negative amount"),
    (json.dumps({**VALID, "amount": -3}).encode(), "negative amount"),
    (json.dumps(_without("currency")).encode(), "missing field(s): currency"),
    (json.dumps({k: v for k, v in VALID.items() if k not in ("account_id", "timestamp")}).encode(),
     "missing field(s): account_id, timestamp"),
    (json.dumps({**VALID, "transaction_id": None}).encode(), "missing field(s): transaction_id"),
    (json.dumps({**VALID, "account_id": 42}).encode(), "not a string: account_id"),
    (json.dumps({**VALID, "amount": "12.50"}).encode(), "amount is not a number"),
    (json.dumps({**VALID, "timestamp": "yesterday"}).encode(), "timestamp is not an ISO 8601 time"),
]


@pytest.fixture
def conn():
    connection = duckdb.connect(":memory:")
    warehouse.ensure_schema(connection)
    yield connection
    connection.close()


def _batch(values, *, start=0, partition=0, keys=None, headers=None):
    n = len(values)
    return pa.Table.from_arrays(
        [
            pa.array([partition] * n, pa.int32()),
            pa.array(range(start, start + n), pa.int64()),
            pa.array(keys or [None] * n, pa.binary()),
            pa.array(values, pa.binary()),
            pa.array(headers or [[]] * n, wk.STAGING_SCHEMA.field("headers").type),
            pa.array([1_764_140_400_000] * n, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        ],
        schema=wk.STAGING_SCHEMA,
    )


def test_every_message_gets_the_verdict_of_its_defect(conn):
    wk.stage_batch(conn, 1, "t", _batch([value for value, _ in CASES]))
    verdicts = conn.execute('SELECT reason FROM ingestion.kafka_staging ORDER BY "offset"').fetchall()
    assert [row[0] for row in verdicts] == [reason for _, reason in CASES]


def test_landing_splits_events_and_rejects_and_stores_the_next_offset(conn):
    wk.stage_batch(conn, 1, "t", _batch([value for value, _ in CASES], keys=[b"k"] * len(CASES)))
    result = wk.land_staged_batch(conn, 1, run_id="run-1")
    valid = sum(reason is None for _, reason in CASES)
    assert (result.events, result.rejects, result.already_landed) == (valid, len(CASES) - valid, 0)
    assert result.next_offsets == {("t", 0): len(CASES)}
    assert sum(result.reasons.values()) == result.rejects
    row = conn.execute(
        "SELECT transaction_id, account_id, amount, currency, merchant, channel, message_key, run_id "
        'FROM ingestion.kafka_events WHERE "offset" = 0'
    ).fetchone()
    assert row == ("txn-1", "acct-1", 12.5, "EUR", "bakery", "card", b"k", "run-1")
    raw = conn.execute('SELECT raw_value, reason FROM ingestion.kafka_rejects WHERE "offset" = 4').fetchone()
    assert raw == (CASES[4][0], "malformed JSON")  # the bytes exactly as they came
    wk.clear_staging(conn, [1])
    assert conn.execute("SELECT count(*) FROM ingestion.kafka_staging").fetchone()[0] == 0


def test_a_replayed_batch_lands_only_offsets_not_yet_landed(conn):
    values = [json.dumps({**VALID, "transaction_id": f"txn-{i}"}).encode() for i in range(10)]
    wk.stage_batch(conn, 1, "t", _batch(values[:6]))
    assert wk.land_staged_batch(conn, 1).events == 6
    # The same messages staged again (a poll after a crash between landing and clean-up), plus new ones.
    wk.stage_batch(conn, 2, "t", _batch(values, start=0))
    replay = wk.land_staged_batch(conn, 2)
    assert (replay.events, replay.already_landed) == (4, 6)
    assert wk.stored_offsets(conn, "t") == {0: 10}
    assert conn.execute("SELECT count(DISTINCT transaction_id) FROM ingestion.kafka_events").fetchone()[0] == 10


def test_a_failed_landing_leaves_data_offsets_and_staging_as_they_were(conn):
    wk.stage_batch(conn, 1, "t", _batch([json.dumps(VALID).encode()] * 3))
    # A row that is already there under the same key makes the insert fail inside the transaction.
    conn.execute(
        "INSERT INTO ingestion.kafka_rejects (topic, \"partition\", \"offset\", reason) VALUES ('t', 0, 9, 'x')"
    )
    wk.stage_batch(conn, 1, "t", _batch([b"bad"], start=9))
    with pytest.raises(duckdb.ConstraintException):
        wk.land_staged_batch(conn, 1)
    assert conn.execute("SELECT count(*) FROM ingestion.kafka_events").fetchone()[0] == 0
    assert wk.stored_offsets(conn, "t") == {}
    assert conn.execute("SELECT count(*) FROM ingestion.kafka_staging").fetchone()[0] == 4


def test_restart_staging_forgets_one_topic_only(conn):
    wk.stage_batch(conn, 1, "a", _batch([b"{}"]))
    wk.stage_batch(conn, 2, "b", _batch([b"{}"]))
    assert wk.restart_staging(conn, "a") == 3
    assert wk.staged_batches(conn) == [2]
