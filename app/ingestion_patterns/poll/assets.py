"""Poll pattern: a declared Kafka topic polled into its table, each message landed exactly once.

Each declared topic (a ``KafkaTopicSource`` instance, ``component.py``) gets two assets and a job from
``build_kafka_topic``. The planning asset compares the offsets stored in the warehouse with the topic's
end offsets and records a small poll plan in DuckDB (per partition, the offset range to land), so the
landing asset may run in another process or pod. Kafka is the durable log: nothing else is copied
between them. The landing asset reads those ranges from the stored offsets, and lands events, rejects
and the new offsets in one transaction per batch; then it copies the offsets to the consumer group,
for visibility only (and the run's rejects to the dead-letter topic, when declared).
``build_kafka_polling_sensor`` makes the one ``kafka_polling_sensor`` that starts a topic's job only
when the topic holds messages past the stored offsets; the daemon retries a failed run. The shipped
``transactions`` instance keeps the reference names: ``poll_kafka_events``, ``process_kafka_events``,
``kafka_poll_job``, ``ingestion.kafka_events``.

Both assets are coroutines: Dagster runs a step's coroutine in that step's one event loop, where
the Kafka clients live, and every DuckDB call goes to a worker thread so it never stalls a fetch.
"""

import asyncio
import hashlib
import os
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from aiokafka import AIOKafkaConsumer
from dagster_duckdb import DuckDBResource
from duckdb import CatalogException, IOException
from pydantic import Field

from .. import warehouse
from ..dagster_conventions import KIND_TAG, RUN_RETRY_TAGS, SOURCE_TAG, row_count_metadata, table_metadata
from . import landing as wk
from .avro import SchemaRegistryClient
from .client import KafkaResource
from .consume import LandSummary, commit_group_offsets, land_planned, partition_lag, plan_poll
from .contract import TopicContract
from .source import KafkaTopicSpec, shipped_topic

_GROUP = "poll"
# The tags an instance's job carries (beside KIND_TAG and SOURCE_TAG): the one sensor finds the topics' jobs by them.
KIND = "kafka_topic"
TOPIC_TAG = "ingestion/kafka-topic"  # absent: the kafka resource's topic (KAFKA_TOPIC)
POLL_ASSET_TAG = "ingestion/poll-asset"
PROCESS_ASSET_TAG = "ingestion/process-asset"
# The header a dead-letter copy of a reject carries its reason in.
REASON_HEADER = "ingestion.reject.reason"


class KafkaTopicConfig(dg.Config):
    bootstrap_servers: str = Field(default="", description="host:port list; empty = KAFKA_BOOTSTRAP_SERVERS")
    kafka_topic: str = Field(
        default="", description="The topic to poll; empty = the declared one, else the resource's (KAFKA_TOPIC)."
    )
    consumer_group: str = Field(
        default="",
        description="Consumer group that receives the offset commits (visibility only); empty = the declared "
        "one, else KAFKA_GROUP_ID",
    )


class KafkaPollConfig(KafkaTopicConfig):
    max_records_per_poll: int | None = Field(
        default=None, ge=1, description="At most this many messages per run; empty = the declared number."
    )


class KafkaProcessConfig(KafkaTopicConfig):
    batch_rows: int | None = Field(
        default=None, ge=1, description="Messages per landing transaction (one Arrow batch); empty = the declared."
    )
    registry_url: str = Field(
        default="", description="Avro: the registry's Confluent-compatible URL; empty = the declared variable's."
    )


def _offsets_text(offsets: dict) -> dg.MetadataValue:
    return dg.MetadataValue.json({str(k): v for k, v in sorted(offsets.items())})


@dataclass(frozen=True)
class InstanceNames:
    """An instance's Dagster names: its two assets and its job."""

    poll_asset: str
    process_asset: str
    job: str

    @classmethod
    def of(cls, spec: KafkaTopicSpec) -> "InstanceNames":
        return cls(
            poll_asset=spec.names.poll_asset or f"poll_{spec.name}",
            process_asset=spec.names.process_asset or f"land_{spec.name}",
            job=spec.names.job or f"{spec.name}_kafka_job",
        )


def _topic(config: KafkaTopicConfig, spec: KafkaTopicSpec, kafka: KafkaResource) -> str:
    return config.kafka_topic or spec.topic or kafka.topic


def build_kafka_topic(spec: KafkaTopicSpec) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition, Any]:
    """A declared topic's two assets (plan, then land) and its job, tagged for ``kafka_polling_sensor``."""
    names = InstanceNames.of(spec)
    contract = TopicContract.of(spec)
    try:
        wk.compile_contract(contract)
    except duckdb.Error as error:
        raise ValueError(f"Kafka topic {spec.name!r}: its contract does not compile: {error}") from error
    ddl = contract.ddl
    shown = f"topic {spec.topic!r}" if spec.topic else "the kafka resource's topic (KAFKA_TOPIC)"

    @dg.asset(
        name=names.poll_asset,
        group_name=_GROUP,
        pool=warehouse.DUCKDB_POOL,
        kinds={"kafka", "duckdb"},
        metadata=table_metadata(wk.PLAN_TABLE, wk.PLAN_COLUMNS),
        description=f"Plan the next landing of {shown}: per partition, the offsets from the stored one (a new "
        "partition: its start) to the end, at most max_records_per_poll messages in all.",
    )
    async def poll_topic(
        context: dg.AssetExecutionContext, config: KafkaPollConfig, kafka: KafkaResource, duckdb: DuckDBResource
    ) -> dg.MaterializeResult:
        topic = _topic(config, spec, kafka)
        async with warehouse.async_session(duckdb, ddl) as conn:
            stored = await asyncio.to_thread(wk.stored_offsets, conn, topic)
        # Kafka is asked with no DuckDB connection open: it may be slow or unreachable.
        async with kafka.consumer_session(config.bootstrap_servers) as consumer:
            plan = await plan_poll(
                consumer, topic, stored, max_records=config.max_records_per_poll or spec.max_records_per_poll
            )
        async with warehouse.async_session(duckdb, ddl) as conn:
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

    @dg.asset(
        name=names.process_asset,
        group_name=_GROUP,
        pool=warehouse.DUCKDB_POOL,
        kinds={"duckdb"},
        deps=[poll_topic],
        metadata=table_metadata(contract.events_table, contract.events_columns),
        description=f"Read the planned offset ranges of {shown} ({spec.value_format}), validate them against the "
        f"contract, and land events (ingestion.{contract.events_table}), rejects with the reason "
        f"(ingestion.{contract.rejects_table}) and offsets together, one transaction per batch.",
    )
    async def land_topic(
        context: dg.AssetExecutionContext, config: KafkaProcessConfig, kafka: KafkaResource, duckdb: DuckDBResource
    ) -> dg.MaterializeResult:
        run_id = context.run.run_id
        topic = _topic(config, spec, kafka)
        landed = LandSummary()
        async with AsyncExitStack() as stack:
            registry = None
            if spec.value_format == "avro":
                registry = SchemaRegistryClient(config.registry_url or spec.registry_url(os.environ))
                stack.push_async_callback(registry.aclose)
            conn = await stack.enter_async_context(warehouse.async_session(duckdb, ddl))
            plan = await asyncio.to_thread(wk.poll_plan, conn, topic)
            if plan:
                async with kafka.consumer_session(config.bootstrap_servers) as consumer:
                    landed = await land_planned(
                        consumer,
                        conn,
                        topic,
                        plan,
                        batch_rows=config.batch_rows or spec.batch_rows,
                        run_id=run_id,
                        on_batch=partial(_log_batch, context.log),
                        contract=contract,
                        registry=registry,
                    )
            else:
                context.log.info(f"no poll plan for {topic!r}: nothing to land")
            reasons = await asyncio.to_thread(wk.reject_reasons, conn, topic, run_id, contract)
            stored = await asyncio.to_thread(wk.stored_offsets, conn, topic)
            totals = await asyncio.to_thread(wk.landed_counts, conn, topic, contract)
            row_count = await asyncio.to_thread(row_count_metadata, conn, contract.events_table)
            dead = (
                await asyncio.to_thread(_run_rejects, conn, contract, topic, run_id) if spec.dead_letter_topic else []
            )
        # The warehouse commit above is the truth; what follows only informs (Kafka's lag tools, the lag
        # figure, the dead-letter copy), so a failure here is a warning, never a failed run that would land again.
        lag: dict[int, int] = {}
        group = config.consumer_group or spec.consumer_group or kafka.group_id
        try:
            async with kafka.consumer_session(config.bootstrap_servers, group_id=group or None) as consumer:
                if group and landed.next_offsets:
                    await _copy_offsets_to_group(context.log, consumer, group, topic, landed.next_offsets)
                lag = await partition_lag(consumer, topic, stored)
        except Exception as exc:  # noqa: BLE001 - the data is landed; only the lag figure is missing
            context.log.warning(f"landed, but could not read the lag from Kafka: {exc}")
        if dead and spec.dead_letter_topic:
            await _send_dead_letters(context.log, kafka, config.bootstrap_servers, spec.dead_letter_topic, dead)
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
                **({"dead_letters_sent": len(dead)} if spec.dead_letter_topic else {}),
                **row_count,
            }
        )

    job = dg.define_asset_job(
        names.job,
        selection=dg.AssetSelection.assets(poll_topic, land_topic),
        description=f"Poll {shown} past the stored offsets and land it (the poll pattern).",
        # A failed run is retried by the daemon; the tags also tell the one sensor this job lands a topic.
        tags={
            **RUN_RETRY_TAGS,
            KIND_TAG: KIND,
            SOURCE_TAG: spec.name,
            POLL_ASSET_TAG: names.poll_asset,
            PROCESS_ASSET_TAG: names.process_asset,
            **({TOPIC_TAG: spec.topic} if spec.topic else {}),
        },
    )
    return poll_topic, land_topic, job


def _log_batch(log: dg.DagsterLogManager, number: int, of: int, result: wk.LandResult) -> None:
    log.info(
        f"landed batch {number}/{of}: {result.events} events, {result.rejects} rejects; "
        f"next offsets {sorted(result.next_offsets.items())}"
    )
    if result.refused:
        log.warning(f"batch {number}: DuckDB refused {result.refused} message(s), landed as rejects with its reason")


async def _copy_offsets_to_group(
    log: dg.DagsterLogManager, consumer: AIOKafkaConsumer, group: str, topic: str, next_offsets: dict[int, int]
) -> None:
    try:
        await commit_group_offsets(consumer, {(topic, p): offset for p, offset in next_offsets.items()})
    except Exception as exc:  # noqa: BLE001 - visibility only, never fail a landed run
        log.warning(f"could not commit offsets to consumer group {group!r}: {exc}")


def _run_rejects(conn: duckdb.DuckDBPyConnection, contract: TopicContract, topic: str, run_id: str) -> list[tuple]:
    """What run ``run_id`` rejected from ``topic``, in offset order: key, raw value, headers, reason, partition."""
    return conn.execute(
        f'SELECT message_key, raw_value, headers, reason, "partition" FROM ingestion.{contract.rejects_table} '
        'WHERE topic = ? AND run_id = ? ORDER BY "partition", "offset"',
        [topic, run_id],
    ).fetchall()


async def _send_dead_letters(
    log: dg.DagsterLogManager, kafka: KafkaResource, bootstrap: str, topic: str, rejects: list[tuple]
) -> None:
    """Produce this run's rejects to the dead-letter topic, each with its reason in a header (as Kafka
    Connect's errors.deadletterqueue.context.headers.enable does). After the commit: a copy, at most once
    per landing run; the rejects table stays the truth."""
    producer = kafka.producer(bootstrap)
    try:
        await producer.start()
        for key, value, headers, reason, _ in rejects:
            kept = [(h["key"], h["value"]) for h in headers or []]
            await producer.send(topic, value=value, key=key, headers=[*kept, (REASON_HEADER, reason.encode())])
        await producer.flush()
    except Exception as exc:  # noqa: BLE001 - the rejects are landed; only their copy is missing
        log.warning(f"could not produce {len(rejects)} reject(s) to dead-letter topic {topic!r}: {exc}")
    finally:
        await producer.stop()


# The shipped reference instance (defs/kafka_topics/transactions/defs.yaml), also importable by name.
poll_kafka_events, process_kafka_events, kafka_poll_job = build_kafka_topic(shipped_topic("transactions"))


class WarehouseBusy(Exception):
    """A writer holds DuckDB's lock; the read-only view of the offsets must wait for the next tick."""


def read_offsets(database: str | Path, topics: Sequence[str]) -> dict[str, dict[int, int]]:
    """Each topic's stored offsets (partition -> next offset), through one read-only connection, which
    never takes the write lock."""
    found: dict[str, dict[int, int]] = {topic: {} for topic in topics}
    if not Path(database).exists():
        return found
    try:
        conn = warehouse.connect(database, read_only=True)
    except IOException as exc:
        raise WarehouseBusy(str(exc).splitlines()[0]) from exc
    try:
        rows = conn.execute(
            'SELECT topic, "partition", next_offset FROM ingestion.kafka_offsets WHERE list_contains(?, topic)',
            [list(topics)],
        ).fetchall()
    except CatalogException:  # the warehouse exists, the poll pattern has not run yet
        return found
    finally:
        conn.close()
    for topic, partition, offset in rows:
        found[topic][partition] = offset
    return found


def read_stored_offsets(database: str | Path, topic: str) -> dict[int, int]:
    """One topic's stored offsets through a read-only connection (``read_offsets``)."""
    return read_offsets(database, [topic])[topic]


def offsets_tag(topic: str, positions: str) -> str:
    """A short, tag-safe name for "this topic at these stored offsets"."""
    return hashlib.sha1(f"{topic}@{positions}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TopicJob:
    """Where the sensor sends a topic's lag: the instance's job, and its two assets (ops) it configures."""

    source: str
    topic: str  # empty: the kafka resource's topic
    job_name: str
    poll_op: str
    process_op: str


# The shipped instance's job, for callers that name no other.
_REFERENCE = TopicJob("transactions", "", "kafka_poll_job", "poll_kafka_events", "process_kafka_events")


def topic_jobs(jobs: Sequence[Any]) -> list[TopicJob]:
    """The declared topics' jobs among ``jobs``, found by their tags."""
    routes = []
    for job in jobs:
        tags = getattr(job, "tags", None) or {}
        if tags.get(KIND_TAG) == KIND:
            routes.append(
                TopicJob(
                    tags[SOURCE_TAG], tags.get(TOPIC_TAG, ""), job.name, tags[POLL_ASSET_TAG], tags[PROCESS_ASSET_TAG]
                )
            )
    return routes


def run_request_for(
    topic: str, stored: dict[int, int], lag: dict[int, int], *, failed_attempts: int = 0, route: TopicJob = _REFERENCE
) -> dg.RunRequest | dg.SkipReason:
    """A run of ``route``'s job when any partition has messages past the stored offsets; its key is
    those offsets, so ticks that see the same offsets (a run not landed yet) do not start a second run.
    After a failed run at the same offsets that the daemon no longer retries, the key gains the number
    of such runs, so the next tick asks again."""
    total = sum(lag.values())
    if total == 0:
        return dg.SkipReason(f"no new messages on {topic!r}: lag 0 over {len(lag)} partition(s)")
    positions = ",".join(f"{p}:{stored.get(p, 'start')}" for p in sorted(lag))
    topic_config = {"config": {"kafka_topic": topic}}
    return dg.RunRequest(
        run_key=f"{topic}@{positions}" + (f"#retry{failed_attempts}" if failed_attempts else ""),
        job_name=route.job_name,
        run_config={"ops": {route.poll_op: topic_config, route.process_op: topic_config}},
        tags={"kafka/topic": topic, "kafka/lag": str(total), "kafka/offsets": offsets_tag(topic, positions)},
    )


# Dagster's tag on a failed run when run retries are enabled: "true" while the daemon will retry it.
_WILL_RETRY_TAG = "dagster/will_retry"


def failed_attempts_at(instance: dg.DagsterInstance, offsets_tag: str, job_name: str = _REFERENCE.job_name) -> int:
    """Failed or canceled runs of ``job_name`` at these stored offsets that nothing retries any more.

    The daemon retries a failed run itself (``RUN_RETRY_TAGS``, same tags); a sensor run beside
    that retry would only wait behind it for the DuckDB slot. So a run still to be retried does not
    count: the key stays and Dagster starts nothing. Once the daemon gives up (or retries are
    off), the count grows, the key changes, and the next tick starts a fresh run with its own retries.
    """
    runs = instance.get_runs(
        dg.RunsFilter(
            job_name=job_name,
            tags={"kafka/offsets": offsets_tag},
            statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED],
        )
    )
    return sum(1 for run in runs if run.tags.get(_WILL_RETRY_TAG) != "true")


def _failed_runs_at(context: dg.SensorEvaluationContext, tag: str, job_name: str) -> int:
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:  # evaluated without an instance (a unit test)
        return 0
    return failed_attempts_at(instance, tag, job_name)


async def _read_lags(kafka: KafkaResource, stored: dict[str, dict[int, int]]) -> dict[str, dict[int, int]]:
    """Each topic's lag by partition (empty: the topic does not exist), over one consumer."""
    async with kafka.consumer_session() as consumer:
        return {topic: await partition_lag(consumer, topic, offsets) for topic, offsets in stored.items()}


def build_kafka_polling_sensor(jobs: Sequence[Any]) -> dg.SensorDefinition:
    """``kafka_polling_sensor``: one run per declared topic with messages past its stored offsets, of
    that topic's job. One sensor for every topic: one read of the stored offsets and one Kafka client
    per tick, however many topics."""
    routes = topic_jobs(jobs)
    targets = [job for job in jobs if getattr(job, "name", None) in {route.job_name for route in routes}]

    @dg.sensor(
        name="kafka_polling_sensor",
        jobs=targets,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests a run of a declared Kafka topic's job when the topic holds messages past the "
        "stored offsets.",
    )
    def kafka_polling_sensor(
        context: dg.SensorEvaluationContext, kafka: KafkaResource, duckdb: DuckDBResource
    ) -> dg.RunRequest | dg.SkipReason | dg.SensorResult:
        if not kafka.bootstrap_servers:
            return dg.SkipReason("Kafka is not configured: KAFKA_BOOTSTRAP_SERVERS is empty")
        topics = {route: route.topic or kafka.topic for route in routes}
        skips = [f"{route.source}: no topic configured: KAFKA_TOPIC is empty" for route, t in topics.items() if not t]
        topics = {route: topic for route, topic in topics.items() if topic}
        if not topics:
            return dg.SkipReason("; ".join(skips) or "no Kafka topic is declared")
        try:
            stored = read_offsets(duckdb.database, list(topics.values()))
        except WarehouseBusy as exc:
            return dg.SkipReason(f"warehouse busy (a run is writing DuckDB), trying next tick: {exc}")
        try:
            # Sensors are evaluated synchronously: their one event loop, for this tick only.
            lags = asyncio.run(asyncio.wait_for(_read_lags(kafka, stored), timeout=30))
        except Exception as exc:  # noqa: BLE001 - an unreachable broker is a reason to skip, not a crash
            return dg.SkipReason(f"Kafka at {kafka.bootstrap_servers} unreachable: {exc!r}")
        requests = []
        for route, topic in topics.items():
            if not lags[topic]:
                skips.append(f"topic {topic!r} does not exist yet")
                continue
            request = run_request_for(topic, stored[topic], lags[topic], route=route)
            if isinstance(request, dg.RunRequest) and (
                failed := _failed_runs_at(context, request.tags["kafka/offsets"], route.job_name)
            ):
                request = run_request_for(topic, stored[topic], lags[topic], failed_attempts=failed, route=route)
            context.log.info(f"{topic}: lag {lags[topic]}, stored offsets {stored[topic]}")
            if isinstance(request, dg.RunRequest):
                requests.append(request)
            else:
                skips.append(request.skip_message or "")
        if not requests:
            return dg.SkipReason("; ".join(skips))
        return requests[0] if len(requests) == 1 else dg.SensorResult(run_requests=requests)

    return kafka_polling_sensor


# The sensor over the shipped instance alone (definitions.py builds the one over every declared topic).
kafka_polling_sensor = build_kafka_polling_sensor([kafka_poll_job])
