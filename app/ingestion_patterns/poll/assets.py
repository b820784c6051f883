"""Poll pattern: a Kafka topic polled into ``ingestion.kafka_events``, each message landed exactly once.

``poll_kafka_events`` compares the offsets stored in the warehouse with the topic's end offsets and
records a small poll plan in DuckDB (per partition, the offset range to land), so
``process_kafka_events`` may run in another process or pod. Kafka is the durable log: nothing else
is copied between them. ``process_kafka_events`` reads those ranges from the stored offsets, and
lands events, rejects and the new offsets in one transaction per batch; then it copies the offsets
to the consumer group, for visibility only. ``kafka_polling_sensor`` starts ``kafka_poll_job`` only
when the topic holds messages past the stored offsets.
"""

import asyncio
import hashlib
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource
from duckdb import CatalogException, IOException
from pydantic import Field

from .. import warehouse
from .consume import commit_group_offsets, land_planned, partition_lag, plan_poll
from .client import KafkaResource
from . import landing as wk

_GROUP = "poll"


class KafkaTopicConfig(dg.Config):
    bootstrap_servers: str = Field(default="", description="host:port list; empty = KAFKA_BOOTSTRAP_SERVERS")
    kafka_topic: str = Field(default="", description="The topic to poll; empty = the resource's (KAFKA_TOPIC).")
    consumer_group: str = Field(
        default="", description="Consumer group that receives the offset commits (visibility only); empty = KAFKA_GROUP_ID"
    )


class KafkaPollConfig(KafkaTopicConfig):
    max_records_per_poll: int = Field(default=1_000_000, ge=1, description="At most this many messages per run.")


class KafkaProcessConfig(KafkaTopicConfig):
    batch_rows: int = Field(
        default=200_000, ge=1, description="Messages per landing transaction (one Arrow batch)."
    )


def _offsets_text(offsets: dict) -> dg.MetadataValue:
    return dg.MetadataValue.json({str(k): v for k, v in sorted(offsets.items())})


@dg.asset(group_name=_GROUP, pool=warehouse.DUCKDB_POOL, kinds={"kafka", "duckdb"})
def poll_kafka_events(
    context: dg.AssetExecutionContext, config: KafkaPollConfig, kafka: KafkaResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Plan the next landing: per partition, the offsets from the stored one (a new partition: its
    start) to the end, at most ``max_records_per_poll`` messages in all."""
    topic = config.kafka_topic or kafka.topic
    with warehouse.session(duckdb, wk.DDL) as conn:
        stored = wk.stored_offsets(conn, topic)

    async def plan():
        consumer = kafka.consumer(config.bootstrap_servers)
        try:
            await consumer.start()
            return await plan_poll(consumer, topic, stored, max_records=config.max_records_per_poll)
        finally:
            await consumer.stop()

    result = asyncio.run(plan())  # with no DuckDB connection open: Kafka may be slow or unreachable
    with warehouse.session(duckdb, wk.DDL) as conn:
        wk.save_poll_plan(conn, topic, result.ranges, run_id=context.run.run_id)
    if not result.topic_exists:
        context.log.warning(f"topic {topic!r} does not exist yet: nothing to poll")
    context.log.info(f"planned {result.planned} messages: {sorted(result.ranges.items())}")
    return dg.MaterializeResult(
        metadata={
            "topic": topic,
            "messages_planned": result.planned,
            "offsets_planned": dg.MetadataValue.json({str(p): list(r) for p, r in sorted(result.ranges.items())}),
            "available_by_partition": _offsets_text(result.available),
            "lag_after_poll": sum(result.lag_after.values()),
        }
    )


@dg.asset(group_name=_GROUP, pool=warehouse.DUCKDB_POOL, kinds={"duckdb"}, deps=[poll_kafka_events])
def process_kafka_events(
    context: dg.AssetExecutionContext, config: KafkaProcessConfig, kafka: KafkaResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Read the planned offset ranges from Kafka, validate them, and land events, rejects (with the
    reason) and offsets together, one transaction per batch."""
    run_id = context.run.run_id
    topic = config.kafka_topic or kafka.topic

    def on_batch(number: int, of: int, result: wk.LandResult) -> None:
        context.log.info(
            f"landed batch {number}/{of}: {result.events} events, {result.rejects} rejects; "
            f"next offsets {sorted(result.next_offsets.items())}"
        )

    with warehouse.session(duckdb, wk.DDL) as conn:
        try:
            plan = wk.poll_plan(conn, topic)

            async def read_and_land():
                consumer = kafka.consumer(config.bootstrap_servers)
                try:
                    await consumer.start()
                    return await land_planned(
                        consumer, conn, topic, plan, batch_rows=config.batch_rows, run_id=run_id,
                        on_batch=on_batch,
                    )
                finally:
                    await consumer.stop()

            landed = asyncio.run(read_and_land()) if plan else None
            reasons = wk.reject_reasons(conn, topic, run_id)
            stored = wk.stored_offsets(conn, topic)
            totals = wk.landed_counts(conn, topic)
        finally:
            # The resource closes it only on success; a failed step must not keep DuckDB's lock.
            conn.close()
    if not plan:
        context.log.info(f"no poll plan for {topic!r}: nothing to land")

    async def after_commit() -> dict[int, int]:
        # The warehouse commit above is the truth; the group commit only feeds Kafka's lag tools.
        group = config.consumer_group or kafka.group_id
        consumer = kafka.consumer(config.bootstrap_servers, group_id=group or None)
        try:
            await consumer.start()
            if group and landed and landed.next_offsets:
                try:
                    await commit_group_offsets(
                        consumer, {(topic, p): offset for p, offset in landed.next_offsets.items()}
                    )
                except Exception as exc:  # noqa: BLE001 - visibility only, never fail a landed run
                    context.log.warning(f"could not commit offsets to consumer group {group!r}: {exc}")
            return await partition_lag(consumer, topic, stored)
        finally:
            await consumer.stop()

    try:
        lag = asyncio.run(after_commit())
    except Exception as exc:  # noqa: BLE001 - the data is landed; only the lag figure is missing
        context.log.warning(f"landed, but could not read the lag from Kafka: {exc}")
        lag = {}
    return dg.MaterializeResult(
        metadata={
            "topic": topic,
            "events_landed": landed.events if landed else 0,
            "rejects": landed.rejects if landed else 0,
            "reject_reasons": dg.MetadataValue.json(reasons),
            "batches_landed": landed.batches if landed else 0,
            "next_offsets": _offsets_text(stored),
            "lag_left": sum(lag.values()),
            "lag_by_partition": _offsets_text(lag),
            "total_events": totals["events"],
            "total_rejects": totals["rejects"],
        }
    )


kafka_poll_job = dg.define_asset_job(
    "kafka_poll_job",
    selection=dg.AssetSelection.assets(poll_kafka_events, process_kafka_events),
    description="Poll the Kafka topic past the stored offsets and land it (the poll pattern).",
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
    failed run at the same offsets the key gains the attempt number, so the next tick retries."""
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


def _failed_runs_at(context: dg.SensorEvaluationContext, tag: str) -> int:
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:  # evaluated without an instance (a unit test)
        return 0
    return instance.get_runs_count(
        dg.RunsFilter(
            job_name=kafka_poll_job.name, tags={"kafka/offsets": tag},
            statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED],
        )
    )


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

    async def lag() -> dict[int, int]:
        consumer = kafka.consumer()
        try:
            await consumer.start()
            return await partition_lag(consumer, topic, stored)
        finally:
            await consumer.stop()

    try:
        lags = asyncio.run(asyncio.wait_for(lag(), timeout=30))
    except Exception as exc:  # noqa: BLE001 - an unreachable broker is a reason to skip, not a crash
        return dg.SkipReason(f"Kafka at {kafka.bootstrap_servers} unreachable: {exc!r}")
    if not lags:
        return dg.SkipReason(f"topic {topic!r} does not exist yet")
    request = run_request_for(topic, stored, lags)
    if isinstance(request, dg.RunRequest) and (failed := _failed_runs_at(context, request.tags["kafka/offsets"])):
        request = run_request_for(topic, stored, lags, failed_attempts=failed)
    context.log.info(f"{topic}: lag {lags}, stored offsets {stored}")
    return request
