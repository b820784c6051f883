"""Poll pattern: a Kafka topic polled into ``ingestion.kafka_events``, each message landed exactly once.

``poll_kafka_events`` compares the offsets stored in the warehouse with the topic's end offsets and
records a small poll plan in DuckDB (per partition, the offset range to land), so
``process_kafka_events`` may run in another process or pod. Kafka is the durable log: nothing else
is copied between them. ``process_kafka_events`` reads those ranges from the stored offsets, and
lands events, rejects and the new offsets in one transaction per batch; then it copies the offsets
to the consumer group, for visibility only. ``kafka_polling_sensor`` starts ``kafka_poll_job`` only
when the topic holds messages past the stored offsets; the daemon retries a failed run.

Both assets are coroutines: Dagster runs a step's coroutine in that step's one event loop, where
the Kafka clients live, and every DuckDB call goes to a worker thread so it never stalls a fetch.
"""

import asyncio
import hashlib
from functools import partial
from pathlib import Path

import dagster as dg
from aiokafka import AIOKafkaConsumer
from dagster_duckdb import DuckDBResource
from duckdb import CatalogException, IOException
from pydantic import Field

from .. import warehouse
from ..dagster_conventions import RUN_RETRY_TAGS, row_count_metadata, table_metadata
from . import landing as wk
from .client import KafkaResource
from .consume import LandSummary, commit_group_offsets, land_planned, partition_lag, plan_poll

_GROUP = "poll"


class KafkaTopicConfig(dg.Config):
    bootstrap_servers: str = Field(default="", description="host:port list; empty = KAFKA_BOOTSTRAP_SERVERS")
    kafka_topic: str = Field(default="", description="The topic to poll; empty = the resource's (KAFKA_TOPIC).")
    consumer_group: str = Field(
        default="",
        description="Consumer group that receives the offset commits (visibility only); empty = KAFKA_GROUP_ID",
    )


class KafkaPollConfig(KafkaTopicConfig):
    max_records_per_poll: int = Field(default=1_000_000, ge=1, description="At most this many messages per run.")


class KafkaProcessConfig(KafkaTopicConfig):
    batch_rows: int = Field(default=200_000, ge=1, description="Messages per landing transaction (one Arrow batch).")


def _offsets_text(offsets: dict) -> dg.MetadataValue:
    return dg.MetadataValue.json({str(k): v for k, v in sorted(offsets.items())})


@dg.asset(
    group_name=_GROUP,
    pool=warehouse.DUCKDB_POOL,
    kinds={"kafka", "duckdb"},
    metadata=table_metadata(wk.PLAN_TABLE, wk.PLAN_COLUMNS),
)
async def poll_kafka_events(
    context: dg.AssetExecutionContext, config: KafkaPollConfig, kafka: KafkaResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Plan the next landing: per partition, the offsets from the stored one (a new partition: its
    start) to the end, at most ``max_records_per_poll`` messages in all."""
    topic = config.kafka_topic or kafka.topic
    async with warehouse.async_session(duckdb, wk.DDL) as conn:
        stored = await asyncio.to_thread(wk.stored_offsets, conn, topic)
    # Kafka is asked with no DuckDB connection open: it may be slow or unreachable.
    async with kafka.consumer_session(config.bootstrap_servers) as consumer:
        plan = await plan_poll(consumer, topic, stored, max_records=config.max_records_per_poll)
    async with warehouse.async_session(duckdb, wk.DDL) as conn:
        await asyncio.to_thread(wk.save_poll_plan, conn, topic, plan.ranges, run_id=context.run.run_id)
        row_count = await asyncio.to_thread(row_count_metadata, conn, wk.PLAN_TABLE)
    if not plan.topic_exists:
        context.log.warning(f"topic {topic!r} does not exist yet: nothing to poll")
    context.log.info(f"planned {plan.planned} messages: {sorted(plan.ranges.items())}")
    return dg.MaterializeResult(
        metadata={
            "topic": topic,
            "messages_planned": plan.planned,
            "offsets_planned": dg.MetadataValue.json({str(p): list(r) for p, r in sorted(plan.ranges.items())}),
            "available_by_partition": _offsets_text(plan.available),
            "lag_after_poll": sum(plan.lag_after.values()),
            **row_count,
        }
    )


def _log_batch(log: dg.DagsterLogManager, number: int, of: int, result: wk.LandResult) -> None:
    log.info(
        f"landed batch {number}/{of}: {result.events} events, {result.rejects} rejects; "
        f"next offsets {sorted(result.next_offsets.items())}"
    )
    if result.refused:
        log.warning(f"batch {number}: DuckDB refused {result.refused} message(s), landed as rejects with its reason")


@dg.asset(
    group_name=_GROUP,
    pool=warehouse.DUCKDB_POOL,
    kinds={"duckdb"},
    deps=[poll_kafka_events],
    metadata=table_metadata(wk.EVENTS_TABLE, wk.EVENTS_COLUMNS),
)
async def process_kafka_events(
    context: dg.AssetExecutionContext, config: KafkaProcessConfig, kafka: KafkaResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Read the planned offset ranges from Kafka, validate them, and land events, rejects (with the
    reason) and offsets together, one transaction per batch."""
    run_id = context.run.run_id
    topic = config.kafka_topic or kafka.topic
    landed = LandSummary()
    async with warehouse.async_session(duckdb, wk.DDL) as conn:
        plan = await asyncio.to_thread(wk.poll_plan, conn, topic)
        if plan:
            async with kafka.consumer_session(config.bootstrap_servers) as consumer:
                landed = await land_planned(
                    consumer,
                    conn,
                    topic,
                    plan,
                    batch_rows=config.batch_rows,
                    run_id=run_id,
                    on_batch=partial(_log_batch, context.log),
                )
        else:
            context.log.info(f"no poll plan for {topic!r}: nothing to land")
        reasons = await asyncio.to_thread(wk.reject_reasons, conn, topic, run_id)
        stored = await asyncio.to_thread(wk.stored_offsets, conn, topic)
        totals = await asyncio.to_thread(wk.landed_counts, conn, topic)
        row_count = await asyncio.to_thread(row_count_metadata, conn, wk.EVENTS_TABLE)
    # The warehouse commit above is the truth; what follows only informs (Kafka's lag tools, the lag
    # figure), so a failure here is a warning, never a failed run that would land again.
    lag: dict[int, int] = {}
    group = config.consumer_group or kafka.group_id
    try:
        async with kafka.consumer_session(config.bootstrap_servers, group_id=group or None) as consumer:
            if group and landed.next_offsets:
                await _copy_offsets_to_group(context.log, consumer, group, topic, landed.next_offsets)
            lag = await partition_lag(consumer, topic, stored)
    except Exception as exc:  # noqa: BLE001 - the data is landed; only the lag figure is missing
        context.log.warning(f"landed, but could not read the lag from Kafka: {exc}")
    return dg.MaterializeResult(
        metadata={
            "topic": topic,
            "events_landed": landed.events,
            "rejects": landed.rejects,
            "refused_by_warehouse": landed.refused,
            "reject_reasons": dg.MetadataValue.json(reasons),
            "batches_landed": landed.batches,
            "next_offsets": _offsets_text(stored),
            "lag_left": sum(lag.values()),
            "lag_by_partition": _offsets_text(lag),
            "total_events": totals["events"],
            "total_rejects": totals["rejects"],
            **row_count,
        }
    )


async def _copy_offsets_to_group(
    log: dg.DagsterLogManager, consumer: AIOKafkaConsumer, group: str, topic: str, next_offsets: dict[int, int]
) -> None:
    try:
        await commit_group_offsets(consumer, {(topic, p): offset for p, offset in next_offsets.items()})
    except Exception as exc:  # noqa: BLE001 - visibility only, never fail a landed run
        log.warning(f"could not commit offsets to consumer group {group!r}: {exc}")


kafka_poll_job = dg.define_asset_job(
    "kafka_poll_job",
    selection=dg.AssetSelection.assets(poll_kafka_events, process_kafka_events),
    description="Poll the Kafka topic past the stored offsets and land it (the poll pattern).",
    tags=RUN_RETRY_TAGS,
)


class WarehouseBusy(Exception):
    """A writer holds DuckDB's lock; the read-only view of the offsets must wait for the next tick."""


def read_stored_offsets(database: str | Path, topic: str) -> dict[int, int]:
    """The stored offsets through a read-only connection, which never takes the write lock."""
    if not Path(database).exists():
        return {}
    try:
        conn = warehouse.connect(database, read_only=True)
    except IOException as exc:
        raise WarehouseBusy(str(exc).splitlines()[0]) from exc
    try:
        return wk.stored_offsets(conn, topic)
    except CatalogException:  # the warehouse exists, the poll pattern has not run yet
        return {}
    finally:
        conn.close()


def offsets_tag(topic: str, positions: str) -> str:
    """A short, tag-safe name for "this topic at these stored offsets"."""
    return hashlib.sha1(f"{topic}@{positions}".encode()).hexdigest()[:16]


def run_request_for(
    topic: str, stored: dict[int, int], lag: dict[int, int], *, failed_attempts: int = 0
) -> dg.RunRequest | dg.SkipReason:
    """A run when any partition has messages past the stored offsets; its key is those offsets,
    so ticks that see the same offsets (a run not landed yet) do not start a second run. After a
    failed run at the same offsets that the daemon no longer retries, the key gains the number of
    such runs, so the next tick asks again."""
    total = sum(lag.values())
    if total == 0:
        return dg.SkipReason(f"no new messages on {topic!r}: lag 0 over {len(lag)} partition(s)")
    positions = ",".join(f"{p}:{stored.get(p, 'start')}" for p in sorted(lag))
    topic_config = {"config": {"kafka_topic": topic}}
    return dg.RunRequest(
        run_key=f"{topic}@{positions}" + (f"#retry{failed_attempts}" if failed_attempts else ""),
        run_config={"ops": {"poll_kafka_events": topic_config, "process_kafka_events": topic_config}},
        tags={"kafka/topic": topic, "kafka/lag": str(total), "kafka/offsets": offsets_tag(topic, positions)},
    )


# Dagster's tag on a failed run when run retries are enabled: "true" while the daemon will retry it.
_WILL_RETRY_TAG = "dagster/will_retry"


def failed_attempts_at(instance: dg.DagsterInstance, offsets_tag: str) -> int:
    """Failed or canceled runs at these stored offsets that nothing retries any more.

    The daemon retries a failed run itself (``RUN_RETRY_TAGS``, same tags); a sensor run beside
    that retry would only wait behind it for the DuckDB slot. So a run still to be retried does not
    count: the key stays and Dagster starts nothing. Once the daemon gives up (or retries are
    off), the count grows, the key changes, and the next tick starts a fresh run with its own retries.
    """
    runs = instance.get_runs(
        dg.RunsFilter(
            job_name=kafka_poll_job.name,
            tags={"kafka/offsets": offsets_tag},
            statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED],
        )
    )
    return sum(1 for run in runs if run.tags.get(_WILL_RETRY_TAG) != "true")


def _failed_runs_at(context: dg.SensorEvaluationContext, tag: str) -> int:
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:  # evaluated without an instance (a unit test)
        return 0
    return failed_attempts_at(instance, tag)


async def _read_lag(kafka: KafkaResource, topic: str, stored: dict[int, int]) -> dict[int, int]:
    async with kafka.consumer_session() as consumer:
        return await partition_lag(consumer, topic, stored)


@dg.sensor(job=kafka_poll_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def kafka_polling_sensor(
    context: dg.SensorEvaluationContext, kafka: KafkaResource, duckdb: DuckDBResource
) -> dg.RunRequest | dg.SkipReason:
    """Request ``kafka_poll_job`` only when the topic (KAFKA_TOPIC) has messages past the stored offsets."""
    if not kafka.bootstrap_servers:
        return dg.SkipReason("Kafka is not configured: KAFKA_BOOTSTRAP_SERVERS is empty")
    topic = kafka.topic
    if not topic:
        return dg.SkipReason("no topic configured: KAFKA_TOPIC is empty")
    try:
        stored = read_stored_offsets(duckdb.database, topic)
    except WarehouseBusy as exc:
        return dg.SkipReason(f"warehouse busy (a run is writing DuckDB), trying next tick: {exc}")
    try:
        # Sensors are evaluated synchronously: their one event loop, for this tick only.
        lags = asyncio.run(asyncio.wait_for(_read_lag(kafka, topic, stored), timeout=30))
    except Exception as exc:  # noqa: BLE001 - an unreachable broker is a reason to skip, not a crash
        return dg.SkipReason(f"Kafka at {kafka.bootstrap_servers} unreachable: {exc!r}")
    if not lags:
        return dg.SkipReason(f"topic {topic!r} does not exist yet")
    request = run_request_for(topic, stored, lags)
    if isinstance(request, dg.RunRequest) and (failed := _failed_runs_at(context, request.tags["kafka/offsets"])):
        request = run_request_for(topic, stored, lags, failed_attempts=failed)
    context.log.info(f"{topic}: lag {lags}, stored offsets {stored}")
    return request
