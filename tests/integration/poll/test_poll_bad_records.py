"""Bad records on the poll path, against a real broker: messages whose amount is 1e999, NaN or
Infinity, a lone surrogate, a NUL, and one whose producer timestamp DuckDB cannot hold. Each is an
event or a reject with its reason, the partition is never stuck, and a rerun lands nothing."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import NewTopic

from ingestion_patterns.poll.client import KafkaResource

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

NOW_MS = 1_764_140_400_000


def _transaction(i: int, amount: str = "12.5", transaction_id: str | None = None) -> bytes:
    tid = transaction_id or f'"txn-{i}"'
    fields = f'"transaction_id": {tid}, "account_id": "acct-1", "amount": {amount}, "currency": "EUR"'
    return ("{" + fields + ', "timestamp": "2026-11-26T07:00:00+00:00"}').encode()


# (value, producer timestamp in ms, the verdict: None for an event, else the reject's reason or its start)
MESSAGES = [
    (_transaction(0), NOW_MS, None),
    (_transaction(1, amount="1e999"), NOW_MS, "amount is not a finite number"),
    (_transaction(2, amount="NaN"), NOW_MS, "amount is not a finite number"),
    (_transaction(3, amount="-Infinity"), NOW_MS, "amount is not a finite number"),
    (_transaction(4, transaction_id='"\\ud800"'), NOW_MS, "malformed JSON"),
    (_transaction(5, transaction_id='"a\\u0000b"'), NOW_MS, None),
    (_transaction(6), 10**16, "Conversion Error: Could not convert"),  # year 318857: past DuckDB's range
    (_transaction(7), NOW_MS, None),
]


async def _produce(bootstrap: str, topic: str) -> None:
    kafka = KafkaResource(bootstrap_servers=bootstrap)
    admin = kafka.admin()
    await admin.start()
    try:  # Kafka refuses timestamps an hour ahead unless the topic allows them
        await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"message.timestamp.after.max.ms": str(2**63 - 1)})]
        )
    finally:
        await admin.close()
    producer = kafka.producer()
    await producer.start()
    try:
        for value, timestamp_ms, _ in MESSAGES:
            await producer.send_and_wait(topic, value, timestamp_ms=timestamp_ms)
    finally:
        await producer.stop()


def test_each_bad_message_is_an_event_or_a_reject_and_the_partition_moves_on(harness):
    asyncio.run(_produce(harness.bootstrap, harness.topic))
    landed = harness.land(batch_rows=100)["process_kafka_events"]
    assert (landed["events_landed"], landed["rejects"], landed["refused_by_warehouse"]) == (3, 5, 1)
    assert landed["lag_left"] == 0

    verdicts = dict(
        harness.query(
            'SELECT "offset", NULL FROM ingestion.kafka_events UNION ALL SELECT "offset", reason FROM ingestion.kafka_rejects'
        )
    )
    for offset, (_, _, verdict) in enumerate(MESSAGES):
        assert (verdicts[offset] is None) if verdict is None else verdicts[offset].startswith(verdict), offset
    assert harness.scalar('SELECT transaction_id FROM ingestion.kafka_events WHERE "offset" = 5') == "a\x00b"
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_events WHERE NOT isfinite(amount)") == 0
    assert harness.query("SELECT next_offset FROM ingestion.kafka_offsets") == [(len(MESSAGES),)]

    again = harness.land()["process_kafka_events"]
    assert (again["events_landed"], again["rejects"]) == (0, 0)
