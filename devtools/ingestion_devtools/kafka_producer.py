"""Produce test transactions to Kafka: the events of the poll pattern, with bad ones mixed in on request.

``ingest produce`` and the benchmark use it. A transaction is a JSON object with the fields that
``process_kafka_events`` validates (see ``REQUIRED_FIELDS``); ``bad_ratio`` replaces that share of
the messages with malformed JSON, a negative amount or a missing field, in equal parts.

With ``value_format="avro"`` the values are Avro in the Confluent wire format instead: the schema
(``TRANSACTION_SCHEMA``, or another version of it for evolution tests) is registered under the
subject ``<topic>-value`` of a Confluent-compatible registry, and each value is the magic byte, that
id and the Avro body. Its bad kinds are ``AVRO_BAD_KINDS``: a cut-off body, a negative or non-finite
amount, a value that is not in the wire format.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import random
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from fastavro import parse_schema, schemaless_writer

from ingestion_patterns.poll.avro import AvroColumn, encode_wire

REQUIRED_FIELDS = ("transaction_id", "account_id", "amount", "currency", "timestamp")
BAD_KINDS = ("malformed_json", "negative_amount", "missing_field")
AVRO_BAD_KINDS = ("corrupt_body", "negative_amount", "non_finite_amount", "not_wire_format")
VALUE_FORMATS = ("json", "avro")
# The Avro form of a transaction: the timestamp as microseconds since the epoch (timestamp-micros), the
# descriptive fields optional. Versions of it (fields added with defaults, optional ones removed) make
# evolution tests; fields a version lacks are left out of its values, fields no transaction has take
# their default.
TRANSACTION_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Transaction",
    "namespace": "ingestion_patterns.poll",
    "fields": [
        {"name": "transaction_id", "type": "string"},
        {"name": "account_id", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "currency", "type": "string"},
        {"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "merchant", "type": ["null", "string"], "default": None},
        {"name": "channel", "type": ["null", "string"], "default": None},
    ],
}
# The columns a consumer declares for it (the required fields required, the descriptive ones nullable).
TRANSACTION_COLUMNS = [
    *(AvroColumn(name, pa.string(), required=True) for name in ("transaction_id", "account_id")),
    AvroColumn("amount", pa.float64(), required=True),
    AvroColumn("currency", pa.string(), required=True),
    AvroColumn("timestamp", pa.timestamp("us", tz="UTC"), required=True),
    AvroColumn("merchant", pa.string()),
    AvroColumn("channel", pa.string()),
]
COMPRESSION_TYPES = ("gzip", "snappy", "lz4", "zstd")
_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY")
_MERCHANTS = ("grocer", "airline", "bookshop", "pharmacy", "cinema", "hardware", "bakery", "taxi")
_CHANNELS = ("card", "online", "transfer", "atm")


@dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    kind: str  # "valid" or one of BAD_KINDS (AVRO_BAD_KINDS for Avro)


@dataclass
class ProduceSummary:
    topic: str
    partitions: int
    sent: int = 0
    kinds: Counter = field(default_factory=Counter)
    schema_id: int | None = None  # Avro: the id the registry gave the schema

    @property
    def valid(self) -> int:
        return self.kinds["valid"]

    @property
    def bad(self) -> int:
        return self.sent - self.valid


def transaction(rng: random.Random, transaction_id: str, when: datetime) -> dict[str, Any]:
    """One valid transaction (about 200 bytes as JSON)."""
    return {
        "transaction_id": transaction_id,
        "account_id": f"acct-{rng.randrange(100_000):06d}",
        "amount": round(rng.uniform(0.5, 2_500), 2),
        "currency": rng.choice(_CURRENCIES),
        "timestamp": when.isoformat(timespec="microseconds"),
        "merchant": rng.choice(_MERCHANTS),
        "channel": rng.choice(_CHANNELS),
    }


def spoil(event: dict[str, Any], kind: str, rng: random.Random) -> bytes:
    """The bad message of ``kind`` made from a valid ``event``."""
    if kind == "negative_amount":
        return json.dumps({**event, "amount": -abs(event["amount"]) or -1.0}).encode()
    if kind == "missing_field":
        missing = rng.choice(REQUIRED_FIELDS)
        return json.dumps({k: v for k, v in event.items() if k != missing}).encode()
    if kind == "malformed_json":
        text = json.dumps(event)
        return text[: rng.randrange(1, len(text) - 1)].encode()  # cut short: never valid JSON
    raise ValueError(f"unknown bad kind {kind!r}; expected one of {BAD_KINDS}")


class AvroEncoding:
    """Transactions as wire-format Avro values of ``schema`` (registered as ``schema_id``)."""

    def __init__(self, schema: dict[str, Any], schema_id: int):
        self.schema, self.schema_id = parse_schema(schema), schema_id
        fields = {f["name"]: f["type"] for f in schema["fields"]}
        # Written as an ISO string where this version declares the timestamp a string, else as a datetime.
        self.timestamp_as_text = fields.get("timestamp") == "string"

    def encode(self, event: dict[str, Any]) -> bytes:
        if not self.timestamp_as_text and isinstance(event.get("timestamp"), str):
            event = {**event, "timestamp": datetime.fromisoformat(event["timestamp"])}
        body = io.BytesIO()
        schemaless_writer(body, self.schema, event)
        return encode_wire(self.schema_id, body.getvalue())

    def spoil(self, event: dict[str, Any], kind: str, rng: random.Random) -> bytes:
        """The bad value of ``kind`` (one of AVRO_BAD_KINDS) made from a valid ``event``."""
        if kind == "negative_amount":
            return self.encode({**event, "amount": -abs(event["amount"]) or -1.0})
        if kind == "non_finite_amount":
            return self.encode({**event, "amount": rng.choice((math.nan, math.inf, -math.inf))})
        if kind == "corrupt_body":
            value = self.encode(event)
            return value[: rng.randrange(6, len(value) - 1)]  # cut inside the body: never decodes whole
        if kind == "not_wire_format":
            return json.dumps(event).encode()
        raise ValueError(f"unknown bad kind {kind!r}; expected one of {AVRO_BAD_KINDS}")


def messages(
    count: int,
    *,
    bad_ratio: float = 0.0,
    keys: bool = True,
    headers: bool = False,
    seed: int | None = None,
    avro: AvroEncoding | None = None,
) -> Iterator[Message]:
    """``count`` messages; about ``bad_ratio`` of them bad (exactly round(count * bad_ratio)); JSON values,
    or wire-format Avro ones with ``avro``."""
    if not 0.0 <= bad_ratio <= 1.0:
        raise ValueError("bad_ratio must lie between 0 and 1")
    rng = random.Random(seed)
    run = secrets.token_hex(4) if seed is None else f"{seed:08x}"
    bad_total = round(count * bad_ratio)
    bad_positions = set(rng.sample(range(count), bad_total))
    start = datetime.now(UTC)
    kinds = BAD_KINDS if avro is None else AVRO_BAD_KINDS
    for seq in range(count):
        event = transaction(rng, f"txn-{run}-{seq:09d}", start + timedelta(milliseconds=seq))
        if seq in bad_positions:
            kind = kinds[rng.randrange(len(kinds))]
            value = spoil(event, kind, rng) if avro is None else avro.spoil(event, kind, rng)
        elif avro is None:
            kind, value = "valid", json.dumps(event, separators=(",", ":")).encode()
        else:
            kind, value = "valid", avro.encode(event)
        yield Message(
            key=event["account_id"].encode() if keys else None,
            value=value,
            headers=[("source", b"ingest-produce"), ("seq", str(seq).encode())] if headers else [],
            kind=kind,
        )


async def ensure_topic(topic: str, partitions: int | None, **client_kwargs: Any) -> int:
    """Create ``topic`` with ``partitions`` (1 when None), or grow it to that many.

    Returns the topic's partition count. Kafka cannot shrink a topic; asking for fewer keeps it.
    """
    admin = AIOKafkaAdminClient(**client_kwargs)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            # Three replicas where the cluster has them (Strimzi), one on the local single node.
            replicas = min(3, len((await admin.describe_cluster())["brokers"]))
            response = await admin.create_topics([NewTopic(topic, partitions or 1, replicas)])
            for name, code, *rest in response.topic_errors:
                if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS, a concurrent producer won the race
                    raise RuntimeError(f"creating topic {name!r} failed: error {code} {rest[-1] if rest else ''}")
        current = await _partition_count(admin, topic)
        if partitions and current < partitions:
            await admin.create_partitions({topic: NewPartitions(total_count=partitions)})
            current = partitions
        return current
    finally:
        await admin.close()


async def _partition_count(admin: AIOKafkaAdminClient, topic: str) -> int:
    for _ in range(50):  # a new topic's metadata reaches the broker's cache shortly after creation
        described = await admin.describe_topics([topic])
        parts = described[0].get("partitions") or []
        if parts and not described[0].get("error_code"):
            return len(parts)
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic!r} has no partitions after creation")


async def produce(
    bootstrap_servers: str,
    topic: str,
    count: int,
    *,
    interval: float = 0.0,
    bad_ratio: float = 0.0,
    partitions: int | None = None,
    keys: bool = True,
    headers: bool = False,
    compression: str | None = None,
    seed: int | None = None,
    on_progress: Callable[[int], None] | None = None,
    client_kwargs: dict[str, Any] | None = None,
    value_format: str = "json",
    registry_url: str | None = None,
    schema: dict[str, Any] | None = None,
) -> ProduceSummary:
    """Send ``count`` transactions to ``topic``, waiting for every acknowledgement (acks=all).

    ``interval`` > 0 sends one message at a time with that pause; 0 sends as fast as batching allows.
    ``on_progress(n)`` is called with the number of messages newly acknowledged. With ``value_format``
    "avro", ``schema`` (default ``TRANSACTION_SCHEMA``) is registered under ``<topic>-value`` at
    ``registry_url`` (a Confluent-compatible API) and the values are wire-format Avro.
    """
    if compression not in (None, *COMPRESSION_TYPES):
        raise ValueError(f"compression must be one of {COMPRESSION_TYPES}")
    if value_format not in VALUE_FORMATS:
        raise ValueError(f"value_format must be one of {VALUE_FORMATS}")
    avro = None
    if value_format == "avro":
        if not registry_url:
            raise ValueError("Avro values need a schema registry URL (its Confluent-compatible API)")
        from .schema_registry import register_schema

        schema = schema or TRANSACTION_SCHEMA
        avro = AvroEncoding(schema, await register_schema(registry_url, f"{topic}-value", schema))
    client_kwargs = {"bootstrap_servers": bootstrap_servers, **(client_kwargs or {})}
    summary = ProduceSummary(topic=topic, partitions=await ensure_topic(topic, partitions, **client_kwargs))
    summary.schema_id = avro.schema_id if avro else None
    producer = AIOKafkaProducer(
        **client_kwargs,
        acks="all",
        compression_type=compression,
        linger_ms=5 if interval == 0 else 0,
        max_batch_size=512 * 1024,
        enable_idempotence=True,
    )
    await producer.start()
    try:
        pending: list[asyncio.Future] = []
        for message in messages(count, bad_ratio=bad_ratio, keys=keys, headers=headers, seed=seed, avro=avro):
            summary.kinds[message.kind] += 1
            future = await producer.send(topic, message.value, key=message.key, headers=message.headers)
            if interval > 0:
                await future
                summary.sent += 1
                if on_progress:
                    on_progress(1)
                await asyncio.sleep(interval)
                continue
            pending.append(future)
            if len(pending) >= 10_000:
                await _acknowledged(pending, summary, on_progress)
        await _acknowledged(pending, summary, on_progress)
    finally:
        await producer.stop()
    return summary


async def _acknowledged(pending: list[asyncio.Future], summary: ProduceSummary, on_progress) -> None:
    if not pending:
        return
    await asyncio.gather(*pending)
    summary.sent += len(pending)
    if on_progress:
        on_progress(len(pending))
    pending.clear()
