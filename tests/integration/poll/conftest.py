"""A real Kafka broker (KRaft, one node, from the cached Maven Central jars) for the poll tests."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource

from ingestion_devtools import kafka_broker as local_broker
from ingestion_devtools.kafka_producer import ProduceSummary, produce
from ingestion_devtools.processes import free_port
from ingestion_patterns import warehouse
from ingestion_patterns.poll.assets import poll_kafka_events, process_kafka_events
from ingestion_patterns.poll.client import KafkaResource
from ingestion_patterns.poll.consume import topic_partitions


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_broker.Broker]:
    """One broker for the session. Skips only when Java is absent; a failed jar download fails."""
    if local_broker.java_executable() is None:
        reason = (
            "Java is not installed: the local Kafka broker needs Java 17+ (apt-get install openjdk-17-jre-headless)"
        )
        print(f"\nSKIP poll integration tests: {reason}")
        pytest.skip(reason)
    try:
        local_broker.ensure_jars()
    except local_broker.BrokerError as error:
        pytest.fail(f"cannot fetch Kafka's jars: {error}")
    data_dir = tmp_path_factory.mktemp("kafka")
    broker = local_broker.start_broker(free_port(), data_dir, timeout=180)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def bootstrap(kafka_broker: local_broker.Broker) -> str:
    return kafka_broker.bootstrap_servers


@pytest.fixture
def topic() -> str:
    return f"test-{secrets.token_hex(4)}"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


class Harness:
    """One test's topic and warehouse on the session's broker, with the steps the tests repeat."""

    def __init__(self, bootstrap: str, topic: str, database: Path):
        self.bootstrap, self.topic, self.database = bootstrap, topic, database

    def send(self, count: int, **options) -> ProduceSummary:
        return asyncio.run(produce(self.bootstrap, self.topic, count, **options))

    def resources(self) -> dict[str, object]:
        return {
            "kafka": KafkaResource(bootstrap_servers=self.bootstrap, topic=self.topic, group_id=f"group-{self.topic}"),
            "duckdb": DuckDBResource(database=str(self.database)),
        }

    def run_config(self, poll: dict | None = None, **process_options) -> dict:
        return {
            "ops": {
                "poll_kafka_events": {"config": {"kafka_topic": self.topic, **(poll or {})}},
                "process_kafka_events": {"config": {"kafka_topic": self.topic, **process_options}},
            }
        }

    def land(self, poll: dict | None = None, **process_options) -> dict[str, dict]:
        """Materialize both assets in this process; returns each asset's metadata values."""
        result = dg.materialize(
            [poll_kafka_events, process_kafka_events],
            resources=self.resources(),
            run_config=self.run_config(poll, **process_options),
        )
        assert result.success
        return {
            event.asset_key.to_user_string(): {k: v.value for k, v in event.materialization.metadata.items()}
            for event in result.get_asset_materialization_events()
            if event.asset_key
        }

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        conn = warehouse.connect(self.database, read_only=True)
        try:
            return conn.execute(sql, params or []).fetchall()
        finally:
            conn.close()

    def scalar(self, sql: str, params: list | None = None):
        return self.query(sql, params)[0][0]

    def end_offsets(self) -> dict[int, int]:
        async def read() -> dict[int, int]:
            consumer = KafkaResource(bootstrap_servers=self.bootstrap).consumer()
            await consumer.start()
            try:
                tps = await topic_partitions(consumer, self.topic)
                return {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}
            finally:
                await consumer.stop()

        return asyncio.run(read())

    def group_offsets(self) -> dict[int, int]:
        """What the consumer group shows (the visibility copy of the stored offsets)."""

        async def read() -> dict[int, int]:
            admin = KafkaResource(bootstrap_servers=self.bootstrap).admin()
            await admin.start()
            try:
                offsets = await admin.list_consumer_group_offsets(f"group-{self.topic}")
                return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == self.topic}
            finally:
                await admin.close()

        return asyncio.run(read())


@pytest.fixture
def harness(bootstrap: str, topic: str, database: Path) -> Harness:
    return Harness(bootstrap, topic, database)


# The Avro tests' schema registry (started on first use).
from registry_fixture import schema_registry  # noqa: E402, F401
