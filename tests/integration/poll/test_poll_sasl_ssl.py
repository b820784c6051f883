"""The poll pattern over SASL_SSL, as it runs against Strimzi's tls listener (or charts/kafka's standalone
one): a local broker with a SASL_SSL listener (SCRAM-SHA-512, a certificate from a CA made here with keytool,
ACLs enforced). The application's user may use only its topics and consumer groups; it produces, the poll job
(poll_kafka_events + process_kafka_events, as the harness runs it) lands every message, and a wrong password
or an ungranted topic fails with a clear error instead of an endless "unable to bootstrap"."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from conftest import Harness
from dagster_duckdb import DuckDBResource

from ingestion_devtools import kafka_broker as local_broker
from ingestion_devtools.kafka_producer import ensure_topic, produce
from ingestion_devtools.processes import free_port
from ingestion_patterns.poll.assets import poll_kafka_events, process_kafka_events
from ingestion_patterns.poll.client import KafkaResource

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

USER = "ingestion-app"
# The application's topics and groups in these tests: names with these prefixes (prefixed ACLs).
TOPICS, GROUPS = "sasl-", "group-sasl-"


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_broker.Broker]:
    if local_broker.java_executable() is None or local_broker.keytool_executable() is None:
        pytest.skip("Java (with keytool) is not installed: the local Kafka broker needs Java 17+")
    sasl = local_broker.SaslSsl(port=free_port(), users={USER: secrets.token_urlsafe(24)})
    broker = local_broker.start_broker(free_port(), tmp_path_factory.mktemp("kafka-sasl"), sasl_ssl=sasl, timeout=180)
    try:
        broker.grant(USER, topics=(TOPICS,), groups=(GROUPS,), prefixed=True)
        yield broker
    finally:
        broker.stop()


def app_resource(broker: local_broker.Broker, topic: str, password: str | None = None) -> KafkaResource:
    """The resource as the code location builds it from its KAFKA_* environment (charts: user-code's
    kafka.security -> KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_CAFILE)."""
    settings = broker.client_settings(USER, password)
    return KafkaResource(
        bootstrap_servers=settings["KAFKA_BOOTSTRAP_SERVERS"],
        topic=topic,
        group_id=f"{GROUPS}{topic}",
        security_protocol=settings["KAFKA_SECURITY_PROTOCOL"],
        sasl_mechanism=settings["KAFKA_SASL_MECHANISM"],
        sasl_username=settings["KAFKA_SASL_USERNAME"],
        sasl_password=settings["KAFKA_SASL_PASSWORD"],
        ssl_cafile=settings["KAFKA_SSL_CAFILE"],
    )


class SecuredHarness(Harness):
    """The plaintext harness's steps, with the application's SASL_SSL resource for producing and landing;
    offsets and group offsets are read on the loopback admin listener (the super user)."""

    def __init__(self, broker: local_broker.Broker, topic: str, database: Path, password: str | None = None):
        super().__init__(broker.bootstrap_servers, topic, database)
        self.kafka = app_resource(broker, topic, password)

    def send(self, count: int, **options):
        kwargs = self.kafka.client_kwargs()
        kwargs.pop("bootstrap_servers")
        return asyncio.run(produce(self.kafka.bootstrap_servers, self.topic, count, client_kwargs=kwargs, **options))

    def resources(self) -> dict[str, object]:
        return {"kafka": self.kafka, "duckdb": DuckDBResource(database=str(self.database))}

    def group_offsets(self) -> dict[int, int]:
        async def read() -> dict[int, int]:
            admin = KafkaResource(bootstrap_servers=self.bootstrap).admin()
            await admin.start()
            try:
                offsets = await admin.list_consumer_group_offsets(self.kafka.group_id)
                return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == self.topic}
            finally:
                await admin.close()

        return asyncio.run(read())


def create_topic(broker: local_broker.Broker, topic: str, partitions: int) -> None:
    """As the operator would (a KafkaTopic): the application's user may not create topics."""
    asyncio.run(ensure_topic(topic, partitions, bootstrap_servers=broker.bootstrap_servers))


def test_the_poll_job_lands_what_the_application_produced_over_sasl_ssl(secured_broker, tmp_path) -> None:
    topic = f"{TOPICS}{secrets.token_hex(4)}"
    create_topic(secured_broker, topic, 3)
    harness = SecuredHarness(secured_broker, topic, tmp_path / "warehouse.duckdb")
    sent = harness.send(120, interval=0, bad_ratio=0.2, seed=7)
    assert sent.sent == 120 and 0 < sent.valid < 120

    metadata = harness.land(batch_rows=50)
    processed = metadata["process_kafka_events"]
    assert processed["events_landed"] == sent.valid
    assert processed["rejects"] == 120 - sent.valid
    assert processed["lag_left"] == 0
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_events") == sent.valid
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_rejects") == 120 - sent.valid
    # The offsets went to the application's consumer group over SASL_SSL too (its Read ACL on the group).
    assert sum(harness.group_offsets().values()) == 120
    assert harness.end_offsets() == harness.group_offsets()
    # A rerun lands nothing.
    again = harness.land()["process_kafka_events"]
    assert again["events_landed"] == 0 and again["rejects"] == 0


def failure_message(harness: SecuredHarness) -> str:
    result = dg.materialize(
        [poll_kafka_events, process_kafka_events],
        resources=harness.resources(),
        run_config=harness.run_config(),
        raise_on_error=False,
    )
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failures
    return "\n".join(str(e.step_failure_data.error.message if e.step_failure_data.error else "") for e in failures)


def test_a_wrong_password_fails_the_run_with_the_reason(secured_broker, tmp_path) -> None:
    topic = f"{TOPICS}{secrets.token_hex(4)}"
    create_topic(secured_broker, topic, 1)
    harness = SecuredHarness(secured_broker, topic, tmp_path / "warehouse.duckdb", password="not-the-password")
    message = failure_message(harness)
    assert "cannot connect to Kafka" in message
    assert f"SCRAM-SHA-512 authentication of user '{USER}' failed" in message, message
    assert "KAFKA_SASL_PASSWORD" in message
    assert not harness.database.exists() or harness.scalar("SELECT count(*) FROM ingestion.kafka_events") == 0


def test_an_untrusted_broker_certificate_is_named(secured_broker, tmp_path) -> None:
    other_ca = local_broker.make_certificates(tmp_path / "other")["ca"]
    kafka = app_resource(secured_broker, "x").model_copy(update={"ssl_cafile": str(other_ca)})
    reason = asyncio.run(kafka.diagnose())
    assert reason and "TLS certificate is not trusted" in reason, reason
    assert asyncio.run(app_resource(secured_broker, "x").diagnose()) is None


def test_the_acls_keep_the_application_to_its_topics(secured_broker, tmp_path) -> None:
    """Producing to, or creating, a topic the application was not granted is refused by the broker."""
    from aiokafka.errors import TopicAuthorizationFailedError

    topic = f"other-{secrets.token_hex(4)}"
    create_topic(secured_broker, topic, 1)
    kafka = app_resource(secured_broker, topic)

    async def write() -> None:
        producer = kafka.producer(request_timeout_ms=10000)
        await producer.start()
        try:
            await asyncio.wait_for(producer.send_and_wait(topic, b"{}"), 30)
        finally:
            await producer.stop()

    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(write())
    with pytest.raises(Exception, match="(?i)authoriz"):
        asyncio.run(ensure_topic(f"{TOPICS}{secrets.token_hex(4)}", 1, **kafka.client_kwargs()))


def test_polling_an_ungranted_topic_fails_the_run(secured_broker, tmp_path) -> None:
    topic = f"other-{secrets.token_hex(4)}"
    create_topic(secured_broker, topic, 1)
    harness = SecuredHarness(secured_broker, topic, tmp_path / "warehouse.duckdb")
    assert "authoriz" in failure_message(harness).lower()
