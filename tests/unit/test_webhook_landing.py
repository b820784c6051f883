"""Push landing: the declared columns are the tables' columns, and a replayed batch lands nothing twice."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime

import duckdb
import pytest

from ingestion_patterns import warehouse
from ingestion_patterns.definitions import defs
from ingestion_patterns.push import landing
from ingestion_patterns.push.assets import BatchRules
from ingestion_patterns.push.inbox import InboxRecord
from ingestion_patterns.push.validate import split_batch


@pytest.fixture
def conn():
    with duckdb.connect(":memory:") as conn:
        warehouse.ensure_schema(conn, landing.DDL)
        yield conn


@pytest.mark.parametrize(
    "table, declared, record",
    [
        (landing.DATA_TABLE, landing.DATA_COLUMNS, landing.WebhookRow),
        (landing.REJECTS_TABLE, landing.REJECTS_COLUMNS, landing.WebhookReject),
    ],
)
def test_tables_have_the_declared_columns_and_batches_carry_a_subset(conn, table, declared, record):
    described = conn.execute(f"DESCRIBE ingestion.{table}").fetchall()
    # DuckDB's own spelling of each declared type (TIMESTAMPTZ is TIMESTAMP WITH TIME ZONE).
    spelled = [(c.name, conn.execute(f"SELECT typeof(NULL::{c.sql_type})").fetchone()[0], c.not_null) for c in declared]
    assert [(name, type_, null == "NO") for name, type_, null, *_ in described] == spelled
    assert {field.name for field in fields(record)} <= {column.name for column in declared}


def test_the_asset_declares_its_table_and_columns():
    process_webhook_data = defs().resolve_assets_def("process_webhook_data")
    spec = process_webhook_data.specs_by_key[process_webhook_data.key]
    assert spec.metadata["dagster/table_name"] == "ingestion.webhook_data"
    schema = spec.metadata["dagster/column_schema"]
    assert [(c.name, c.type) for c in schema.columns] == [(c.name, c.sql_type) for c in landing.DATA_COLUMNS]


def test_a_replayed_batch_is_counted_as_already_landed(conn):
    at = datetime(2026, 1, 1, tzinfo=UTC)
    good = json.dumps({"timestamp": "2026-01-01T00:00:00Z", "data": 1, "type": "t"}).encode()
    records = [InboxRecord(1, "s", "ok", good, {}, at), InboxRecord(2, "s", "bad", b"[]", {}, at)]
    rows, rejects = split_batch(records, BatchRules.for_source("s"))

    first = landing.land_webhook_batch(conn, rows, rejects, run_id="r1")
    replay = landing.land_webhook_batch(conn, rows, rejects, run_id="r2")

    assert (first.inserted, first.rejected, first.already_landed) == (1, 1, 0)
    assert (replay.inserted, replay.rejected, replay.already_landed) == (0, 0, 2)
    assert conn.execute("SELECT event_type, run_id FROM ingestion.webhook_data").fetchall() == [("t", "r1")]


def test_a_replay_is_skipped_by_its_inbox_seqs_and_only_an_event_the_inbox_accepted_again_lands_twice(conn):
    at = datetime(2026, 1, 1, tzinfo=UTC)
    body = json.dumps({"timestamp": "2026-01-01T00:00:00Z", "data": 1, "type": "t"}).encode()
    batch = [InboxRecord(seq, "s", f"e{seq}", body, {}, at) for seq in range(10, 20)]
    rows, _ = split_batch(batch, BatchRules.for_source("s"))
    assert landing.land_webhook_batch(conn, rows, [], run_id="r1").inserted == 10
    # A replay of part of the batch beside rows that are new: only the new ones land.
    more, _ = split_batch([*batch[5:], InboxRecord(20, "s", "e20", body, {}, at)], BatchRules.for_source("s"))
    replay = landing.land_webhook_batch(conn, more, [], run_id="r2")
    assert (replay.inserted, replay.already_landed) == (1, 5)
    # Event e10 re-sent after the inbox forgot it: a new inbox seq, so a second row (the dedup's job).
    again, _ = split_batch([InboxRecord(99, "s", "e10", body, {}, at)], BatchRules.for_source("s"))
    assert landing.land_webhook_batch(conn, again, [], run_id="r3").inserted == 1
    assert conn.execute("SELECT count(*), count(DISTINCT event_id) FROM ingestion.webhook_data").fetchone() == (12, 11)


def test_a_file_made_with_the_old_primary_key_is_rebuilt_without_it_and_keeps_its_rows():
    with duckdb.connect(":memory:") as old:
        warehouse.ensure_schema(
            old, [warehouse.create_table(landing.DATA_TABLE, landing.DATA_COLUMNS, ("source_id", "event_id"))]
        )
        old.execute(
            "INSERT INTO ingestion.webhook_data (source_id, event_id, payload, inbox_seq, received_at)"
            " VALUES ('s', 'e1', '{}', 1, now()), ('s', 'e2', '[1]', 2, now())"
        )
        keys = "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'webhook_data' AND constraint_type = ?"
        assert old.execute(keys, ["PRIMARY KEY"]).fetchone() == (1,)

        warehouse.ensure_schema(old, landing.DDL)
        warehouse.ensure_schema(old, landing.DDL)  # idempotent

        assert old.execute(keys, ["PRIMARY KEY"]).fetchone() == (0,)
        assert old.execute(keys, ["NOT NULL"]).fetchone() == (sum(c.not_null for c in landing.DATA_COLUMNS),)
        rows = old.execute("SELECT event_id, payload, landed_at IS NOT NULL FROM ingestion.webhook_data ORDER BY 1")
        assert rows.fetchall() == [("e1", "{}", True), ("e2", "[1]", True)]


def test_the_event_type_comes_from_where_the_source_declares_it():
    from ingestion_patterns.push.assets import WebhookBatchConfig
    from ingestion_patterns.push.source import WebhookSourceSpec

    at = datetime.now(UTC)
    body = json.dumps({"timestamp": "2026-01-01T00:00:00Z", "data": 1, "type": "in.the.body", "meta": {"kind": 7}})
    record = InboxRecord(1, "s", "e1", body.encode(), {"X-Event-Name": "order.paid"}, at)

    def event_type(declared: dict | None) -> str | None:
        spec = WebhookSourceSpec(source_id="s", event_type=declared)
        [row], _ = split_batch([record], BatchRules.of(WebhookBatchConfig(), spec))
        return row.event_type

    assert event_type(None) == "in.the.body"  # the default rules: X-GitHub-Event, then event_type, then type
    assert event_type({"header": "X-Event-Name"}) == "order.paid"
    assert event_type({"json_path": "meta.kind"}) == "7"
    assert event_type({"header": "X-Absent"}) is None  # declared and not there: no type, not a guess


def test_a_declared_json_schema_rejects_a_payload_naming_the_first_violation(tmp_path):
    from ingestion_patterns.declarations import SourceConfigError
    from ingestion_patterns.push.assets import WebhookBatchConfig
    from ingestion_patterns.push.source import WebhookSourceSpec

    schema = {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "object", "properties": {"amount": {"type": "number", "minimum": 0}}}},
    }
    (tmp_path / "orders.schema.json").write_text(json.dumps(schema))
    spec = WebhookSourceSpec(source_id="s", json_schema="orders.schema.json")
    rules = BatchRules.of(WebhookBatchConfig(), spec, spec.payload_schema(tmp_path))
    at = datetime.now(UTC)

    def record(seq: int, data: object) -> InboxRecord:
        body = json.dumps({"timestamp": "2026-01-01T00:00:00Z", "data": data}).encode()
        return InboxRecord(seq, "s", f"e{seq}", body, {}, at)

    rows, rejects = split_batch([record(1, {"amount": 5}), record(2, {"amount": -1}), record(3, [1])], rules)
    assert [row.event_id for row in rows] == ["e1"]
    assert [reject.reason for reject in rejects] == [
        "does not match the source's JSON Schema at $.data.amount: -1 is less than the minimum of 0",
        "does not match the source's JSON Schema at $.data: [1] is not of type 'object'",
    ]
    # Another source landed by the same job (undeclared, local development) is not held to it.
    other = BatchRules.of(WebhookBatchConfig(source_id="other"), spec, spec.payload_schema(tmp_path))
    assert other.payload_schema is None

    (tmp_path / "broken.schema.json").write_text(json.dumps({"type": "no-such-type"}))
    with pytest.raises(SourceConfigError, match=r"json_schema .*broken.schema.json: 'no-such-type' is not valid"):
        WebhookSourceSpec(source_id="s", json_schema="broken.schema.json").payload_schema(tmp_path)
    with pytest.raises(SourceConfigError, match="json_schema .*missing.json"):
        WebhookSourceSpec(source_id="s", json_schema="missing.json").payload_schema(tmp_path)
