"""The poll pattern against a real broker: valid events and rejects add up, reruns land nothing,
new partitions are read from their start, keys/headers/compression all land."""

from __future__ import annotations

import asyncio
import json

import pytest

from ingestion_devtools.kafka_producer import REQUIRED_FIELDS, ensure_topic, messages

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REASON_OF_KIND = {"malformed_json": "malformed JSON", "negative_amount": "negative amount"}


def test_valid_events_and_rejects_add_up_and_a_rerun_lands_nothing(harness):
    # Three producers into a 3-partition topic: keyed with headers, unkeyed without, keyed and 30% bad.
    batches = [
        dict(count=150, seed=1, keys=True, headers=True, bad_ratio=0.1),
        dict(count=150, seed=2, keys=False, headers=False, bad_ratio=0.1),
        dict(count=300, seed=3, keys=True, headers=False, bad_ratio=0.3),
    ]
    sent = [harness.send(partitions=3, interval=0, **options) for options in batches]
    total = sum(s.sent for s in sent)
    valid = sum(s.valid for s in sent)
    kinds = {kind: sum(s.kinds[kind] for s in sent) for kind in ("malformed_json", "negative_amount", "missing_field")}
    assert total == 600 and 0 < valid < total and all(kinds.values())

    metadata = harness.land(batch_rows=128)  # several batches, several landing transactions
    processed = metadata["process_kafka_events"]
    assert processed["events_landed"] == valid
    assert processed["rejects"] == total - valid
    assert processed["lag_left"] == 0

    # Exactly the valid transactions landed, each once, with their fields.
    expected_ids = {
        json.loads(m.value)["transaction_id"]
        for options in batches
        for m in messages(options["count"], bad_ratio=options["bad_ratio"], seed=options["seed"])
        if m.kind == "valid"
    }
    landed_ids = [row[0] for row in harness.query("SELECT transaction_id FROM ingestion.kafka_events")]
    assert len(landed_ids) == len(set(landed_ids)) == valid
    assert set(landed_ids) == expected_ids
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_events WHERE amount < 0") == 0

    # Every bad message is a reject with the reason of its kind; together they make N.
    reasons = dict(harness.query("SELECT reason, count(*) FROM ingestion.kafka_rejects GROUP BY reason"))
    assert reasons["malformed JSON"] == kinds["malformed_json"]
    assert reasons["negative amount"] == kinds["negative_amount"]
    missing = {r: n for r, n in reasons.items() if r.startswith("missing field(s): ")}
    assert sum(missing.values()) == kinds["missing_field"]
    assert {r.removeprefix("missing field(s): ") for r in missing} <= set(REQUIRED_FIELDS)
    assert sum(reasons.values()) == total - valid
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_rejects WHERE raw_value IS NULL") == 0
    covered = harness.scalar(
        'SELECT count(*) FROM (SELECT "partition", "offset" FROM ingestion.kafka_events '
        'UNION SELECT "partition", "offset" FROM ingestion.kafka_rejects)'
    )
    assert covered == total

    # The stored offsets are the end of every partition, as planned.
    end = harness.end_offsets()
    assert dict(harness.query('SELECT "partition", next_offset FROM ingestion.kafka_offsets')) == end
    assert sum(end.values()) == total
    assert dict(harness.query('SELECT "partition", to_offset FROM ingestion.kafka_poll_plan')) == end
    assert harness.group_offsets() == end  # copied to the consumer group after the commit

    # Keys and headers are kept: keyed messages carry their account id, the first batch its headers.
    assert (
        harness.scalar(
            "SELECT count(*) FROM ingestion.kafka_events WHERE message_key IS NOT NULL "
            "AND decode(message_key) <> account_id"
        )
        == 0
    )
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_events WHERE message_key IS NULL") == sent[1].valid
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_events WHERE len(headers) = 2") == sent[0].valid
    assert (
        harness.scalar(
            "SELECT count(*) FROM ingestion.kafka_events WHERE len(headers) = 2 AND headers[1].key = 'source' "
            "AND headers[1].value = 'ingest-produce'::BLOB"
        )
        == sent[0].valid
    )

    # A rerun finds nothing new and lands nothing.
    again = harness.land()
    assert again["poll_kafka_events"]["messages_planned"] == 0
    assert again["process_kafka_events"]["events_landed"] == 0
    assert again["process_kafka_events"]["rejects"] == 0
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_events") == valid
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_rejects") == total - valid


def test_a_partition_added_later_is_consumed_from_its_start(harness):
    harness.send(40, partitions=1, interval=0, seed=10)
    assert harness.land()["process_kafka_events"]["events_landed"] == 40
    assert harness.end_offsets() == {0: 40}

    # Grow to three partitions, then send keyed messages: some go to the new partitions.
    assert asyncio.run(ensure_topic(harness.topic, 3, bootstrap_servers=harness.bootstrap)) == 3
    harness.send(200, interval=0, seed=11)
    end = harness.end_offsets()
    assert set(end) == {0, 1, 2} and end[1] > 0 and end[2] > 0

    metadata = harness.land()
    assert metadata["process_kafka_events"]["events_landed"] == 200
    per_partition = dict(
        harness.query('SELECT "partition", min("offset") FROM ingestion.kafka_events WHERE "partition" > 0 GROUP BY 1')
    )
    assert per_partition == {1: 0, 2: 0}  # from their very first message
    assert dict(harness.query('SELECT "partition", next_offset FROM ingestion.kafka_offsets')) == end
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_events") == 240


@pytest.mark.parametrize("compression", ["gzip", "lz4", "zstd", "snappy"])
def test_batches_from_compressing_producers_land(harness, compression):
    sent = harness.send(300, partitions=3, interval=0, compression=compression, headers=True, bad_ratio=0.1, seed=20)
    processed = harness.land()["process_kafka_events"]
    assert (processed["events_landed"], processed["rejects"]) == (sent.valid, sent.bad)
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_events WHERE len(headers) = 2") == sent.valid


def test_max_records_per_poll_caps_a_run_and_the_next_run_lands_the_rest(harness):
    harness.send(90, partitions=3, interval=0, seed=12)
    first = harness.land(poll={"max_records_per_poll": 30})
    assert first["poll_kafka_events"]["messages_planned"] == 30
    assert first["poll_kafka_events"]["lag_after_poll"] == 60
    assert first["process_kafka_events"]["events_landed"] == 30
    assert first["process_kafka_events"]["lag_left"] == 60
    second = harness.land()
    assert second["process_kafka_events"]["events_landed"] == 60
    assert harness.scalar("SELECT count(DISTINCT transaction_id) FROM ingestion.kafka_events") == 90


def test_a_topic_that_does_not_exist_yet_lands_nothing(harness):
    """A topic that does not exist yet: the run succeeds, lands nothing and says so."""
    metadata = harness.land()
    assert metadata["poll_kafka_events"]["messages_planned"] == 0
    assert metadata["process_kafka_events"]["events_landed"] == 0


def test_each_materialization_reports_the_row_count_of_its_table(harness):
    sent = harness.send(40, partitions=2, interval=0, bad_ratio=0.25, seed=50)
    metadata = harness.land()
    assert metadata["poll_kafka_events"]["dagster/row_count"] == 2  # the plan: one row per partition
    assert metadata["process_kafka_events"]["dagster/row_count"] == sent.valid
