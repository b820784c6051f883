"""Plan what to read from a topic, read exactly that from the stored offsets, and report lag.

The consumer is assigned the topic's partitions by hand (no group rebalancing). The poll step
turns the stored offsets and the end offsets into a plan (``plan_poll``); the process step reads
each planned partition from its stored next offset, or from its start when the warehouse has
never seen it (a partition added later included), up to the plan's end, and lands it batch by
batch (``land_planned``). Fetched records become Arrow record batches as they arrive, and each
landing batch lands in a worker thread, so the next fetch overlaps the DuckDB write.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

import dagster as dg
import duckdb
import pyarrow as pa
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from . import landing as wk
from .avro import SchemaRegistryClient
from .contract import TopicContract

_HEADER_TYPE = wk.INCOMING_SCHEMA.field("headers").type
_NO_PROGRESS_SECONDS = 10.0
# Rows per Arrow record batch of a landing batch (slices, not copies): DuckDB's scan of an Arrow table
# hands each thread a record batch at a time, so a table of one record batch is judged on one core.
SCAN_CHUNK_ROWS = 16_384


@dataclass
class PollPlan:
    """What ``plan_poll`` found and decided."""

    topic: str
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (from, to) to land
    end_offsets: dict[int, int] = field(default_factory=dict)
    topic_exists: bool = True

    @property
    def planned(self) -> int:
        return sum(end - start for start, end in self.ranges.values())

    @property
    def available(self) -> dict[int, int]:
        """Messages in Kafka past the stored offsets, by partition (the lag when planning)."""
        return {p: self.end_offsets[p] - start for p, (start, _) in self.ranges.items()}

    @property
    def lag_after(self) -> dict[int, int]:
        """Messages left past the plan (beyond ``max_records_per_poll``), by partition."""
        return {p: self.end_offsets[p] - end for p, (_, end) in self.ranges.items()}


@dataclass
class LandSummary:
    """What ``land_planned`` committed, over all its batches."""

    events: int = 0
    rejects: int = 0
    refused: int = 0  # of the rejects, messages DuckDB refused (isolated from their batch)
    batches: int = 0
    next_offsets: dict[int, int] = field(default_factory=dict)


def records_to_arrow(records: Sequence) -> pa.Table:
    """aiokafka ``ConsumerRecord``s -> one Arrow table in ``INCOMING_SCHEMA``, column by column
    (C-level ``map(attrgetter)`` passes; no per-record Python function calls), in record batches of
    ``SCAN_CHUNK_ROWS`` rows."""

    def column(name: str) -> list:
        return list(map(attrgetter(name), records))

    header_lists = column("headers")
    if any(header_lists):
        headers = pa.array([[{"key": k, "value": v} for k, v in h] for h in header_lists], type=_HEADER_TYPE)
    else:  # the common case: no headers at all; empty lists without touching Python objects
        headers = pa.ListArray.from_arrays(
            pa.repeat(pa.scalar(0, pa.int32()), len(records) + 1), pa.array([], _HEADER_TYPE.value_type)
        )
    table = pa.Table.from_arrays(
        [
            pa.array(column("partition"), pa.int32()),
            pa.array(column("offset"), pa.int64()),
            pa.array(column("key"), pa.binary()),
            pa.array(column("value"), pa.binary()),
            headers,
            pa.array(column("timestamp"), pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        ],
        schema=wk.INCOMING_SCHEMA,
    )
    return pa.Table.from_batches(table.to_batches(max_chunksize=SCAN_CHUNK_ROWS), schema=wk.INCOMING_SCHEMA)


class TopicNotAuthorized(dg.Failure):
    """The broker's ACLs do not let this client read the topic: a configuration error, not an empty
    topic, so the run fails with that reason and is not retried."""

    def __init__(self, topic: str):
        super().__init__(
            description=f"not authorized to read topic {topic!r}: check the Kafka user's ACLs", allow_retries=False
        )


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, after refreshing metadata (so a partition added since is seen).

    An unauthorized topic looks like one without partitions in the metadata; aiokafka notes it in
    ``unauthorized_topics``, and it must fail the run rather than land nothing and succeed."""
    # Asked for by name (aiokafka has no public refresh): a metadata request for all topics leaves an
    # unauthorized one out silently, one that names it gets TOPIC_AUTHORIZATION_FAILED.
    await consumer._client.add_topic(topic)
    await consumer._client.force_metadata_update()
    if topic in consumer._client.cluster.unauthorized_topics:
        raise TopicNotAuthorized(topic)
    partitions = consumer.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(partitions or ())]


def cap_ranges(starts: dict[int, int], ends: dict[int, int], max_records: int) -> dict[int, tuple[int, int]]:
    """Partition -> (start, end) covering at most ``max_records`` messages in all, shared fairly:
    each partition gets an equal share of what is left, and a partition that needs less leaves
    the rest to the others."""
    lags = {p: max(0, ends[p] - starts[p]) for p in starts}
    ranges, left = {}, max_records
    for index, partition in enumerate(sorted(lags, key=lambda p: (lags[p], p))):
        take = min(lags[partition], left // (len(lags) - index))
        ranges[partition] = (starts[partition], starts[partition] + take)
        left -= take
    return dict(sorted(ranges.items()))


async def start_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], stored: dict[int, int]
) -> dict[int, int]:
    """Where each partition's next message to land is: its stored next offset, or its log start
    for a partition never landed (and when retention deleted messages below the stored offset)."""
    beginnings = await consumer.beginning_offsets(tps)
    return {tp.partition: max(stored.get(tp.partition, 0), beginnings[tp]) for tp in tps}


async def plan_poll(consumer: AIOKafkaConsumer, topic: str, stored: dict[int, int], *, max_records: int) -> PollPlan:
    """The offset ranges to land next: from the stored offsets to the end offsets seen now (what
    arrives meanwhile waits for the next run), at most ``max_records`` messages in all."""
    plan = PollPlan(topic=topic)
    tps = await topic_partitions(consumer, topic)
    if not tps:
        plan.topic_exists = False
        return plan
    starts = await start_offsets(consumer, tps, stored)
    plan.end_offsets = {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}
    plan.ranges = cap_ranges(starts, plan.end_offsets, max_records)
    return plan


async def land_planned(
    consumer: AIOKafkaConsumer,
    conn: duckdb.DuckDBPyConnection,
    topic: str,
    plan: dict[int, tuple[int, int]],
    *,
    batch_rows: int = 200_000,
    run_id: str = "",
    on_batch: Callable[[int, int, wk.LandResult], None] | None = None,
    contract: TopicContract = wk.TRANSACTIONS,
    registry: SchemaRegistryClient | None = None,
) -> LandSummary:
    """Read and land the planned offset ranges of ``topic``, ``batch_rows`` messages per transaction.

    ``consumer`` is started and not yet assigned. Each partition is read from its stored offset
    (the truth; the plan's start only says where it was when planned) up to the plan's end. Stops
    early only when nothing has come for ``_NO_PROGRESS_SECONDS``. ``on_batch(number, of, result)``
    is called after each landing transaction commits. An Avro ``contract`` needs ``registry``: each batch's
    writer schemas are fetched (or found cached) before it lands, and ``RegistryUnavailable`` stops the
    landing there, every batch before it committed with its offsets.
    """
    if contract.value_format == "avro" and registry is None:
        raise ValueError(f"topic {topic!r} is Avro: land_planned needs a schema registry client")
    summary = LandSummary()
    tps = [TopicPartition(topic, p) for p in sorted(plan)]
    if not tps:
        return summary
    stored = await asyncio.to_thread(wk.stored_offsets, conn, topic)  # DuckDB never on the event loop
    starts = await start_offsets(consumer, tps, stored)
    ends = {tp: plan[tp.partition][1] for tp in tps}
    pending = {tp for tp in tps if starts[tp.partition] < ends[tp]}
    if not pending:
        return summary
    consumer.assign(sorted(pending))
    for tp in pending:
        consumer.seek(tp, starts[tp.partition])
    total = sum(max(0, ends[tp] - starts[tp.partition]) for tp in pending)
    expected_batches = -(-total // batch_rows)
    buffered: list[pa.RecordBatch] = []  # the next landing batch, built as it is fetched
    buffered_rows = 0
    landing: asyncio.Future | None = None
    last_progress = time.monotonic()

    async def flush() -> None:
        nonlocal landing, buffered, buffered_rows
        if landing is not None:
            result = await landing  # one DuckDB write at a time on this connection
            landing = None
            summary.events += result.events
            summary.rejects += result.rejects
            summary.refused += result.refused
            summary.next_offsets.update(result.next_offsets)
            if on_batch:  # in the event loop's thread, as callers' loggers expect
                on_batch(summary.batches, max(expected_batches, summary.batches), result)
        if not buffered:
            return
        table = pa.Table.from_batches(buffered, schema=wk.INCOMING_SCHEMA)  # no copy
        buffered, buffered_rows = [], 0
        schemas = None
        if registry is not None and contract.value_format == "avro":  # the writer schemas first
            schemas = await registry.schemas(wk.schema_ids(table))
        summary.batches += 1
        land = functools.partial(wk.land_batch, conn, topic, table, run_id=run_id, contract=contract, schemas=schemas)
        # In a worker thread: the event loop goes on fetching meanwhile. Handed to the executor now, not as a
        # task: a task's first step waits for the event loop to come round, and getmany returns without
        # yielding to it while fetched records are at hand (~0.25 s per batch of DuckDB idle).
        landing = asyncio.get_running_loop().run_in_executor(None, contextvars.copy_context().run, land)

    # A fetch's records are many tracked objects: with the cyclic GC on, each collection rescans
    # them. They hold no cycles; refcounting frees them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while pending:
            fetched = await consumer.getmany(*pending, timeout_ms=1000, max_records=batch_rows - buffered_rows)
            for tp, records in fetched.items():
                # Stop each partition at the plan's end.
                if records and records[-1].offset >= ends[tp]:
                    records = [r for r in records if r.offset < ends[tp]]
                if records:
                    # To Arrow here, a fetched chunk at a time (hot in cache, its records freed at once),
                    # not in the landing thread: there it held the GIL against the fetch and delayed DuckDB.
                    buffered.extend(records_to_arrow(records).to_batches())
                    buffered_rows += len(records)
                    last_progress = time.monotonic()
            for tp in list(pending):
                # position() also passes transaction markers, which are never returned as records.
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
            if buffered_rows >= batch_rows:
                await flush()
            if not fetched and time.monotonic() - last_progress > _NO_PROGRESS_SECONDS:
                break
        await flush()
        await flush()  # waits for the last landing
    finally:
        if gc_was_enabled:
            gc.enable()
        if landing is not None:
            await asyncio.gather(landing, return_exceptions=True)
    return summary


async def partition_lag(consumer: AIOKafkaConsumer, topic: str, stored: dict[int, int]) -> dict[int, int]:
    """Partition -> messages in Kafka past the stored next offset (an unseen partition from its start)."""
    tps = await topic_partitions(consumer, topic)
    if not tps:
        return {}
    beginnings = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    return {tp.partition: max(0, ends[tp] - max(stored.get(tp.partition, 0), beginnings[tp])) for tp in tps}


async def commit_group_offsets(consumer: AIOKafkaConsumer, offsets: dict[tuple[str, int], int]) -> None:
    """Copy the landed offsets to the consumer group (started consumer with a group_id), so
    ``kafka-consumer-groups`` and Strimzi's lag metrics show progress. Visibility only."""
    if not offsets:
        return
    tps = [TopicPartition(topic, partition) for topic, partition in offsets]
    consumer.assign(tps)
    await consumer.commit(
        {
            TopicPartition(topic, partition): OffsetAndMetadata(offset, "")
            for (topic, partition), offset in offsets.items()
        }
    )
