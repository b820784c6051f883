"""Validation and landing of Kafka batches: the verdict DuckDB's vectorised pass gives each message
(in-memory DuckDB, no files), the one-transaction landing, the poll plan and its fair cap."""

import json

import duckdb
import pyarrow as pa
import pytest
from aiokafka.structs import ConsumerRecord

from ingestion_patterns import warehouse
from ingestion_patterns.poll import consume
from ingestion_patterns.poll import landing as wk
from ingestion_patterns.poll.consume import cap_ranges, records_to_arrow

VALID = {
    "transaction_id": "txn-1",
    "account_id": "acct-1",
    "amount": 12.5,
    "currency": "EUR",
    "timestamp": "2026-11-26T07:00:00+00:00",
    "merchant": "bakery",
    "channel": "card",
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
    (
        json.dumps({k: v for k, v in VALID.items() if k not in ("account_id", "timestamp")}).encode(),
        "missing field(s): account_id, timestamp",
    ),
    (json.dumps({**VALID, "transaction_id": None}).encode(), "missing field(s): transaction_id"),
    (json.dumps({**VALID, "account_id": 42}).encode(), "not a string: account_id"),
    (json.dumps({**VALID, "amount": "12.50"}).encode(), "amount is not a number"),
    (json.dumps({**VALID, "timestamp": "yesterday"}).encode(), "timestamp is not an ISO 8601 time"),
]


@pytest.fixture
def conn():
    connection = duckdb.connect(":memory:")
    warehouse.ensure_schema(connection, wk.DDL)
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
            pa.array(headers or [[]] * n, wk.INCOMING_SCHEMA.field("headers").type),
            pa.array([1_764_140_400_000] * n, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        ],
        schema=wk.INCOMING_SCHEMA,
    )


def test_every_message_gets_the_verdict_of_its_defect(conn):
    wk.land_batch(conn, "t", _batch([value for value, _ in CASES]))
    verdicts = dict(
        conn.execute(
            'SELECT "offset", NULL FROM ingestion.kafka_events UNION ALL SELECT "offset", reason FROM ingestion.kafka_rejects'
        ).fetchall()
    )
    assert [verdicts[offset] for offset in range(len(CASES))] == [reason for _, reason in CASES]


def test_landing_splits_events_and_rejects_and_stores_the_next_offset(conn):
    result = wk.land_batch(conn, "t", _batch([value for value, _ in CASES], keys=[b"k"] * len(CASES)), run_id="run-1")
    valid = sum(reason is None for _, reason in CASES)
    assert (result.events, result.rejects) == (valid, len(CASES) - valid)
    assert result.next_offsets == {0: len(CASES)}
    assert wk.stored_offsets(conn, "t") == {0: len(CASES)}
    assert sum(wk.reject_reasons(conn, "t", "run-1").values()) == result.rejects
    assert wk.reject_reasons(conn, "t", "another-run") == {}
    row = conn.execute(
        "SELECT transaction_id, account_id, amount, currency, merchant, channel, message_key, run_id "
        'FROM ingestion.kafka_events WHERE "offset" = 0'
    ).fetchone()
    assert row == ("txn-1", "acct-1", 12.5, "EUR", "bakery", "card", b"k", "run-1")
    raw = conn.execute('SELECT raw_value, reason FROM ingestion.kafka_rejects WHERE "offset" = 4').fetchone()
    assert raw == (CASES[4][0], "malformed JSON")  # the bytes exactly as they came
    assert conn.execute("SELECT count(*) FROM ingestion.kafka_events WHERE headers IS NULL").fetchone()[0] == 0


def test_batches_advance_each_partition_to_its_own_next_offset(conn):
    values = [json.dumps({**VALID, "transaction_id": f"txn-{i}"}).encode() for i in range(10)]
    wk.land_batch(conn, "t", _batch(values[:6]))
    assert wk.stored_offsets(conn, "t") == {0: 6}
    second = pa.concat_tables([_batch(values[6:], start=6), _batch(values[:3], start=0, partition=1)])
    assert wk.land_batch(conn, "t", second).next_offsets == {0: 10, 1: 3}
    assert wk.stored_offsets(conn, "t") == {0: 10, 1: 3}
    assert conn.execute("SELECT count(*) FROM ingestion.kafka_events").fetchone()[0] == 13


def test_a_message_landed_twice_fails_the_whole_transaction(conn):
    """The consumer reads from the stored offsets, so this never happens; if it did, the primary
    key rejects the batch and nothing of it lands: not its new events, not its offsets."""
    wk.land_batch(conn, "t", _batch([json.dumps(VALID).encode()] * 3))
    with pytest.raises(duckdb.ConstraintException):
        wk.land_batch(conn, "t", _batch([json.dumps(VALID).encode(), b"bad"] * 2, start=2))
    assert conn.execute("SELECT count(*) FROM ingestion.kafka_events").fetchone()[0] == 3
    assert conn.execute("SELECT count(*) FROM ingestion.kafka_rejects").fetchone()[0] == 0
    assert wk.stored_offsets(conn, "t") == {0: 3}


def _records(values, *, partition=0, headers=()):
    return [
        ConsumerRecord(
            "t", partition, offset, 1_764_140_400_000 + offset, 0, b"k%d" % offset, value, None, 2, 0, headers
        )
        for offset, value in enumerate(values)
    ]


@pytest.mark.parametrize("headers", [(), (("source", b"test"),)])
def test_records_become_record_batches_of_at_most_scan_chunk_rows(monkeypatch, headers):
    """Several record batches, so DuckDB scans (judges) a landing batch on every core; the same rows."""
    monkeypatch.setattr(consume, "SCAN_CHUNK_ROWS", 4)
    values = [value for value, _ in CASES]
    table = records_to_arrow(_records(values, headers=headers))
    assert table.schema == wk.INCOMING_SCHEMA
    assert [len(b) for b in table.to_batches()] == [4, 4, 4, 4, 2]
    assert table.column("message_value").to_pylist() == values
    assert table.column("offset").to_pylist() == list(range(len(values)))
    assert table.column("message_key").to_pylist() == [b"k%d" % i for i in range(len(values))]
    assert table.column("headers").to_pylist() == [[{"key": k, "value": v} for k, v in headers]] * len(values)
    monkeypatch.setattr(consume, "SCAN_CHUNK_ROWS", len(values))  # one record batch
    assert records_to_arrow(_records(values, headers=headers)).equals(table)


def test_a_batch_in_many_record_batches_lands_as_one_in_a_single_one(conn, monkeypatch):
    """DuckDB judges the record batches in parallel: the same verdicts, rows and offsets."""
    values = [value for value, _ in CASES] * 50
    landed = []
    for chunk_rows in (len(values), 7):  # one record batch, then many
        monkeypatch.setattr(consume, "SCAN_CHUNK_ROWS", chunk_rows)
        topic = f"t{chunk_rows}"
        result = wk.land_batch(conn, topic, records_to_arrow(_records(values)))
        rows = conn.execute(
            'SELECT * EXCLUDE (topic, landed_at) FROM ingestion.kafka_events WHERE topic = ? ORDER BY "offset"', [topic]
        ).fetchall()
        rejects = conn.execute(
            'SELECT * EXCLUDE (topic, rejected_at) FROM ingestion.kafka_rejects WHERE topic = ? ORDER BY "offset"',
            [topic],
        ).fetchall()
        landed.append((result.events, result.rejects, result.next_offsets, rows, rejects))
    assert landed[0] == landed[1]
    assert landed[0][2] == {0: len(values)}


def test_the_poll_plan_is_replaced_per_topic(conn):
    wk.save_poll_plan(conn, "a", {0: (0, 10), 1: (5, 5)}, run_id="r1")
    wk.save_poll_plan(conn, "b", {0: (3, 4)})
    assert wk.poll_plan(conn, "a") == {0: (0, 10), 1: (5, 5)}
    wk.save_poll_plan(conn, "a", {0: (10, 12)}, run_id="r2")
    assert wk.poll_plan(conn, "a") == {0: (10, 12)}
    assert wk.poll_plan(conn, "b") == {0: (3, 4)}
    assert wk.poll_plan(conn, "c") == {}


def test_the_cap_is_shared_fairly_and_a_short_partition_leaves_its_share_to_the_others():
    starts, ends = {0: 0, 1: 100, 2: 7}, {0: 1000, 1: 110, 2: 1007}
    assert cap_ranges(starts, ends, 10_000) == {0: (0, 1000), 1: (100, 110), 2: (7, 1007)}
    capped = cap_ranges(starts, ends, 310)
    assert capped == {0: (0, 150), 1: (100, 110), 2: (7, 157)}
    assert sum(end - start for start, end in capped.values()) == 310
    assert cap_ranges({0: 5}, {0: 5}, 10) == {0: (5, 5)}


def _created_columns(conn, table):
    return conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'ingestion' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()


def _declared_columns(conn, asset):
    """The asset's column schema for the UI, each type as DuckDB spells it in information_schema."""
    schema = asset.specs_by_key[asset.key].metadata["dagster/column_schema"]
    return [(c.name, conn.execute(f"SELECT typeof(CAST(NULL AS {c.type}))").fetchone()[0]) for c in schema.columns]


def test_each_asset_declares_its_table_with_the_columns_the_ddl_creates(conn):
    from ingestion_patterns.poll.assets import poll_kafka_events, process_kafka_events

    for asset, table in ((poll_kafka_events, "kafka_poll_plan"), (process_kafka_events, "kafka_events")):
        assert asset.specs_by_key[asset.key].metadata["dagster/table_name"] == f"ingestion.{table}"
        assert _declared_columns(conn, asset) == _created_columns(conn, table)
