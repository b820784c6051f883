"""Read a topic from the offsets stored in the warehouse into staging, and report lag.

The consumer is assigned every partition of the topic by hand (no group rebalancing): each
partition is read from its stored next offset, or from its start when the warehouse has never seen
it (a partition added later included). Fetched records become Arrow batches in bulk and are staged
in a worker thread, so the next fetch overlaps the DuckDB write.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

import duckdb
import pyarrow as pa
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from ..warehouse import kafka as wk

_HEADER_TYPE = wk.STAGING_SCHEMA.field("headers").type
_NO_PROGRESS_SECONDS = 10.0


@dataclass
class PollResult:
    topic: str
    staged: int = 0
    batches: int = 0
    # partition -> (first offset staged, next offset after the last staged)
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    start_offsets: dict[int, int] = field(default_factory=dict)
    end_offsets: dict[int, int] = field(default_factory=dict)
    topic_exists: bool = True

    @property
    def lag_after(self) -> dict[int, int]:
        """Messages left in Kafka after what this poll staged, by partition."""
        return {
            p: max(0, end - self.ranges.get(p, (0, self.start_offsets.get(p, 0)))[1])
            for p, end in self.end_offsets.items()
        }


def records_to_arrow(records: Sequence) -> pa.Table:
    """aiokafka ``ConsumerRecord``s -> one Arrow table in ``STAGING_SCHEMA``, column by column
    (C-level ``map(attrgetter)`` passes; no per-record Python function calls)."""
    def column(name: str) -> list:
        return list(map(attrgetter(name), records))

    header_lists = column("headers")
    if any(header_lists):
        headers = pa.array([[{"key": k, "value": v} for k, v in h] for h in header_lists], type=_HEADER_TYPE)
    else:  # the common case: no headers at all; empty lists without touching Python objects
        headers = pa.ListArray.from_arrays(
            pa.repeat(pa.scalar(0, pa.int32()), len(records) + 1), pa.array([], _HEADER_TYPE.value_type)
        )
    return pa.Table.from_arrays(
        [
            pa.array(column("partition"), pa.int32()),
            pa.array(column("offset"), pa.int64()),
            pa.array(column("key"), pa.binary()),
            pa.array(column("value"), pa.binary()),
            headers,
            pa.array(column("timestamp"), pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        ],
        schema=wk.STAGING_SCHEMA,
    )


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, after refreshing metadata (so a partition added since is seen)."""
    await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public refresh
    partitions = consumer.partitions_for_topic(topic)
    return [TopicPartition(topic, p) for p in sorted(partitions or ())]


async def stage_new_messages(
    consumer: AIOKafkaConsumer,
    conn: duckdb.DuckDBPyConnection,
    topic: str,
    *,
    max_records: int,
    batch_rows: int = 200_000,
    run_id: str = "",
    on_batch: Callable[[int, int], None] | None = None,
) -> PollResult:
    """Stage up to ``max_records`` messages of ``topic`` past the stored offsets.

    ``consumer`` is started and not yet assigned. Stops at the end offsets seen at the start (what
    arrives meanwhile waits for the next run), at ``max_records``, or when nothing has come for
    ``_NO_PROGRESS_SECONDS``. Staging is restarted first: the stored offsets decide what is read.
    """
    result = PollResult(topic=topic)
    tps = await topic_partitions(consumer, topic)
    if not tps:
        result.topic_exists = False
        return result
    stored = wk.stored_offsets(conn, topic)
    consumer.assign(tps)
    beginnings = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    for tp in tps:
        # A stored offset below the log start means retention deleted messages; read what is left.
        start = max(stored.get(tp.partition, 0), beginnings[tp])
        consumer.seek(tp, start)
        result.start_offsets[tp.partition] = start
        result.end_offsets[tp.partition] = ends[tp]
    batch_no = wk.restart_staging(conn, topic)
    pending = {tp for tp in tps if result.start_offsets[tp.partition] < ends[tp]}
    buffered: list = []
    staging: asyncio.Task | None = None
    last_progress = time.monotonic()

    async def flush() -> None:
        nonlocal batch_no, staging, buffered
        if staging is not None:
            await staging  # one DuckDB write at a time on this connection
            staging = None
        if not buffered:
            return
        table, buffered = records_to_arrow(buffered), []
        number, batch_no = batch_no, batch_no + 1
        result.batches += 1
        staging = asyncio.create_task(asyncio.to_thread(wk.stage_batch, conn, number, topic, table, run_id=run_id))
        if on_batch:
            on_batch(number, table.num_rows)

    # Buffered records are millions of tracked objects: with the cyclic GC on, each gen-2 collection
    # rescans all of them (seconds per poll). They hold no cycles; refcounting frees them.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while pending and result.staged < max_records:
            fetched = await consumer.getmany(
                *pending, timeout_ms=1000, max_records=min(max_records - result.staged, batch_rows)
            )
            for tp, records in fetched.items():
                # Stop each partition at the end offset seen at the start of the poll.
                if records and records[-1].offset >= ends[tp]:
                    records = [r for r in records if r.offset < ends[tp]]
                if not records:
                    continue
                first, _ = result.ranges.get(tp.partition, (records[0].offset, 0))
                result.ranges[tp.partition] = (first, records[-1].offset + 1)
                buffered.extend(records)
                result.staged += len(records)
                last_progress = time.monotonic()
            for tp in list(pending):
                # position() also passes transaction markers, which are never returned as records.
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
            if len(buffered) >= batch_rows:
                await flush()
            if not fetched and time.monotonic() - last_progress > _NO_PROGRESS_SECONDS:
                break
        await flush()
        await flush()  # waits for the last write
    finally:
        if gc_was_enabled:
            gc.enable()
        if staging is not None:
            await asyncio.gather(staging, return_exceptions=True)
    return result


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
        {TopicPartition(topic, partition): OffsetAndMetadata(offset, "") for (topic, partition), offset in offsets.items()}
    )
