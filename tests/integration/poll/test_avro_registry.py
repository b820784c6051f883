"""Avro values through the real local broker and a real Apicurio Registry: three schema versions on one
topic, unknown ids, corrupt bodies, and a registry outage in the middle of decoding."""

from __future__ import annotations

import asyncio
import contextlib
import io
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from fastavro import parse_schema, schemaless_writer
from registry_fixture import LocalRegistry

from ingestion_devtools.kafka_producer import TRANSACTION_COLUMNS, TRANSACTION_SCHEMA, AvroEncoding, messages
from ingestion_devtools.schema_registry import register_schema
from ingestion_patterns.poll.avro import (
    AvroColumn,
    AvroDecoder,
    DecodedBatch,
    RegistryUnavailable,
    SchemaRegistryClient,
    encode_wire,
)
from ingestion_patterns.poll.client import KafkaResource
from ingestion_patterns.poll.consume import topic_partitions

pytestmark = pytest.mark.integration

_REQUIRED = {f["name"]: f for f in TRANSACTION_SCHEMA["fields"][:5]}
# v1: the required fields only; v2: the shipped schema (merchant and channel added, optional);
# v3: merchant removed (it was optional), country added with a default.
V1 = {**TRANSACTION_SCHEMA, "fields": list(_REQUIRED.values())}
V2 = TRANSACTION_SCHEMA
V3 = {
    **TRANSACTION_SCHEMA,
    "fields": [
        *_REQUIRED.values(),
        {"name": "channel", "type": ["null", "string"], "default": None},
        {"name": "country", "type": "string", "default": "ZZ"},
    ],
}
COLUMNS = [*TRANSACTION_COLUMNS, AvroColumn("country", pa.string(), default="??")]


def read_topic(bootstrap: str, topic: str) -> list:
    """Every record of ``topic``, in partition then offset order."""

    async def read() -> list:
        consumer = KafkaResource(bootstrap_servers=bootstrap).consumer()
        await consumer.start()
        try:
            partitions = await topic_partitions(consumer, topic)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            records: list = []
            while len(records) < sum(ends.values()):  # a fresh topic: offsets start at 0
                for batch in (await consumer.getmany(timeout_ms=1000)).values():
                    records.extend(batch)
            return sorted(records, key=lambda r: (r.partition, r.offset))
        finally:
            await consumer.stop()

    return asyncio.run(read())


async def _decode(url: str, values: list[bytes], decoder: AvroDecoder) -> DecodedBatch:
    async with contextlib.aclosing(SchemaRegistryClient(url, retries=0)) as registry:
        return await decoder.decode_batch(values, registry)


def decode(url: str, values: list[bytes], decoder: AvroDecoder | None = None) -> DecodedBatch:
    return asyncio.run(_decode(url, values, decoder or AvroDecoder(COLUMNS)))


def test_three_schema_versions_on_one_topic_land_in_the_right_columns(harness, schema_registry: LocalRegistry):
    ids = []
    for seed, schema in enumerate((V1, V2, V3)):
        sent = harness.send(
            40, value_format="avro", registry_url=schema_registry.url, schema=schema, seed=seed, headers=True
        )
        ids.append(sent.schema_id)
    assert len(set(ids)) == 3, ids
    records = read_topic(harness.bootstrap, harness.topic)
    assert len(records) == 120
    result = decode(schema_registry.url, [r.value for r in records])
    assert result.rejects == []
    rows = result.table.to_pylist()
    version = {schema_id: n for n, schema_id in enumerate(ids, start=1)}
    for record, row, schema_id in zip(records, rows, result.schema_ids, strict=True):
        # Every column of every version lines up with what the producer sent beside the value.
        assert row["account_id"].encode() == record.key
        assert row["transaction_id"].startswith("txn-") and row["amount"] > 0
        assert abs(row["timestamp"] - datetime.fromtimestamp(record.timestamp / 1000, UTC)) < timedelta(minutes=5)
        v = version[schema_id]
        assert (row["merchant"] is not None) == (v == 2), (v, row)  # only v2 has it
        assert (row["channel"] is not None) == (v >= 2), (v, row)  # added in v2, kept in v3
        assert row["country"] == ("ZZ" if v == 3 else "??"), (v, row)  # v3's default, else the column's
    assert [version[i] for i in result.schema_ids] == [1] * 40 + [2] * 40 + [3] * 40

    # Through a reader schema (Avro's resolution): v3's country default reaches v1 and v2 records too.
    reader = {**V3, "fields": [*V3["fields"], {"name": "merchant", "type": ["null", "string"], "default": None}]}
    resolved = decode(schema_registry.url, [r.value for r in records], AvroDecoder(COLUMNS, reader_schema=reader))
    assert resolved.rejects == []
    assert resolved.table.column("country").to_pylist() == ["ZZ"] * 120
    assert resolved.table.column("merchant").to_pylist() == result.table.column("merchant").to_pylist()
    assert resolved.table.column("transaction_id").equals(result.table.column("transaction_id"))


def test_unknown_ids_corrupt_bodies_and_foreign_values_are_rejected_with_reasons(
    harness, schema_registry: LocalRegistry
):
    sent = harness.send(200, value_format="avro", registry_url=schema_registry.url, bad_ratio=0.3, seed=11)
    schema_id = sent.schema_id
    assert schema_id is not None
    # The same seed gives the same kinds in the same order (only the timestamps differ).
    kinds = [m.kind for m in messages(200, bad_ratio=0.3, seed=11, avro=AvroEncoding(TRANSACTION_SCHEMA, schema_id))]
    values = [r.value for r in read_topic(harness.bootstrap, harness.topic)]
    unknown = encode_wire(2_000_000_000, values[kinds.index("valid")][5:])
    result = decode(schema_registry.url, [*values, unknown])
    reasons = result.reasons.to_pylist()
    for kind, reason in zip(kinds, reasons, strict=False):
        if kind in ("valid", "negative_amount"):  # a negative amount is the contract's check, not the decoder's
            assert reason is None
        elif kind == "corrupt_body":
            assert reason.startswith(f"corrupt Avro body (schema id {schema_id}): "), reason
        elif kind == "not_wire_format":
            assert reason == "not Confluent wire format: magic byte is 123, expected 0"
        else:
            assert reason == "amount is not a finite number", (kind, reason)
    assert reasons[-1] == "schema id 2000000000 not in the registry"
    assert (
        sum(r is not None for r in reasons)
        == sent.kinds["corrupt_body"] + sent.kinds["not_wire_format"] + sent.kinds["non_finite_amount"] + 1
    )
    assert result.good.num_rows == sent.kinds["valid"] + sent.kinds["negative_amount"]


def test_a_registry_outage_raises_registry_unavailable_and_decoding_resumes_when_it_is_back(
    schema_registry: LocalRegistry,
):
    url = schema_registry.url
    first = asyncio.run(register_schema(url, "outage-value", V1))
    second = asyncio.run(register_schema(url, "outage-value", V2))
    event = {
        "transaction_id": "txn-outage",
        "account_id": "acct-1",
        "amount": 12.5,
        "currency": "EUR",
        "timestamp": datetime(2024, 5, 1, tzinfo=UTC),
        "merchant": "bakery",
    }

    def value(schema_id: int, schema: dict) -> bytes:
        body = io.BytesIO()
        schemaless_writer(body, parse_schema(schema), event)
        return encode_wire(schema_id, body.getvalue())

    decoder = AvroDecoder(COLUMNS)

    async def scenario() -> None:
        async with contextlib.aclosing(SchemaRegistryClient(url, retries=1, backoff_seconds=0.1)) as registry:
            before = await decoder.decode_batch([value(first, V1)], registry)
            assert before.rejects == [] and before.table.column("merchant").to_pylist() == [None]
            await asyncio.to_thread(schema_registry.down)
            try:
                # A cached id still decodes; a batch needing an id not fetched yet cannot: nothing is rejected.
                cached = await decoder.decode_batch([value(first, V1)], registry)
                assert cached.rejects == []
                with pytest.raises(RegistryUnavailable, match="unavailable"):
                    await decoder.decode_batch([value(first, V1), value(second, V2)], registry)
            finally:
                await asyncio.to_thread(schema_registry.up)
            after = await decoder.decode_batch([value(first, V1), value(second, V2)], registry)
            assert after.rejects == []
            assert after.table.column("merchant").to_pylist() == [None, "bakery"]

    asyncio.run(scenario())
