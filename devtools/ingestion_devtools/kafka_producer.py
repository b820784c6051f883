"""Produce test transactions to Kafka: the events of the poll pattern, with bad ones mixed in on request.

``ingest produce`` and the benchmark use it. A transaction is a JSON object with the fields that
``process_kafka_events`` validates (see ``REQUIRED_FIELDS``); ``bad_ratio`` replaces that share of
the messages with malformed JSON, a negative amount or a missing field, in equal parts.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic

REQUIRED_FIELDS = ("transaction_id", "account_id", "amount", "currency", "timestamp")
BAD_KINDS = ("malformed_json", "negative_amount", "missing_field")
COMPRESSION_TYPES = ("gzip", "snappy", "lz4", "zstd")
_CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY")
_MERCHANTS = ("grocer", "airline", "bookshop", "pharmacy", "cinema", "hardware", "bakery", "taxi")
_CHANNELS = ("card", "online", "transfer", "atm")


@dataclass(frozen=True)
class Message:
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    kind: str  # "valid" or one of BAD_KINDS


@dataclass
class ProduceSummary:
    topic: str
    partitions: int
    sent: int = 0
    kinds: Counter = field(default_factory=Counter)

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


def messages(
    count: int,
    *,
    bad_ratio: float = 0.0,
    keys: bool = True,
    headers: bool = False,
    seed: int | None = None,
) -> Iterator[Message]:
    """``count`` messages; about ``bad_ratio`` of them bad (exactly round(count * bad_ratio))."""
    if not 0.0 <= bad_ratio <= 1.0:
        raise ValueError("bad_ratio must lie between 0 and 1")
    rng = random.Random(seed)
    run = secrets.token_hex(4) if seed is None else f"{seed:08x}"
    bad_total = round(count * bad_ratio)
    bad_positions = set(rng.sample(range(count), bad_total))
    start = datetime.now(UTC)
    for seq in range(count):
        event = transaction(rng, f"txn-{run}-{seq:09d}", start + timedelta(milliseconds=seq))
        if seq in bad_positions:
            kind = BAD_KINDS[rng.randrange(len(BAD_KINDS))]
            value = spoil(event, kind, rng)
        else:
            kind, value = "valid", json.dumps(event, separators=(",", ":")).encode()
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
) -> ProduceSummary:
    """Send ``count`` transactions to ``topic``, waiting for every acknowledgement (acks=all).

    ``interval`` > 0 sends one message at a time with that pause; 0 sends as fast as batching allows.
    ``on_progress(n)`` is called with the number of messages newly acknowledged.
    """
    if compression not in (None, *COMPRESSION_TYPES):
        raise ValueError(f"compression must be one of {COMPRESSION_TYPES}")
    client_kwargs = {"bootstrap_servers": bootstrap_servers, **(client_kwargs or {})}
    summary = ProduceSummary(topic=topic, partitions=await ensure_topic(topic, partitions, **client_kwargs))
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
        for message in messages(count, bad_ratio=bad_ratio, keys=keys, headers=headers, seed=seed):
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
