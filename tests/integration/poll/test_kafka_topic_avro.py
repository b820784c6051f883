"""The ``payments`` example (an Avro KafkaTopicSource, defs/kafka_topics/examples/payments.yaml) end to end,
declared through INGEST_SOURCES_FILE: real broker, real Apicurio Registry, real DuckDB file. Produced
Avro lands by the one kafka_polling_sensor and the instance's own job, rejects carry their reason (and are
copied to the dead-letter topic); kill -9 of a landing run then a rerun lands every message exactly once;
a registry outage fails the run cleanly and the rerun completes."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dg_project import kill_when
from registry_fixture import LocalRegistry
from test_avro_registry import read_topic
from test_poll_crash import _lock_released

from ingestion_devtools.kafka_producer import TRANSACTION_SCHEMA, ProduceSummary, produce
from ingestion_devtools.processes import ManagedProcess, wait_until
from ingestion_patterns.instance import prepare_dagster_home
from ingestion_patterns.poll.assets import REASON_HEADER
from ingestion_patterns.push.source import package_defs_folder

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

EXAMPLE = package_defs_folder() / "kafka_topics" / "examples" / "payments.yaml"
JOB = "payments_kafka_job"


class Payments:
    """The payments example on the harness's fresh topic and warehouse, declared in a sources file."""

    def __init__(self, harness, registry: LocalRegistry, tmp_path: Path):
        self.harness, self.registry = harness, registry
        self.bootstrap, self.topic, self.database = harness.bootstrap, harness.topic, harness.database
        self.query, self.scalar, self.end_offsets = harness.query, harness.scalar, harness.end_offsets
        attributes = yaml.safe_load(EXAMPLE.read_text())["attributes"]
        attributes.update(topic=self.topic, dead_letter_topic=f"{self.topic}.dlq")
        self.sources = tmp_path / "sources.yaml"
        self.sources.write_text(yaml.safe_dump({"kafka_topics": [attributes]}))
        self.env = {
            "INGEST_SOURCES_FILE": str(self.sources),
            "SCHEMA_REGISTRY_URL": registry.url,
            "DUCKDB_PATH": str(self.database),
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_TOPIC": f"absent-{uuid.uuid4().hex[:8]}",  # the shipped instance's topic: none here
            "KAFKA_GROUP_ID": f"group-{self.topic}",
            "INGEST_DATA_DIR": str(tmp_path),
            "DAGSTER_HOME": str(tmp_path / "dagster"),
        }

    def send(self, count: int, **options) -> ProduceSummary:
        return asyncio.run(
            produce(self.bootstrap, self.topic, count, value_format="avro", registry_url=self.registry.url, **options)
        )

    def definitions(self, monkeypatch) -> dg.Definitions:
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)
        from ingestion_patterns.definitions import defs

        return defs()

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(prepare_dagster_home(Path(self.env["DAGSTER_HOME"]))))

    def land(self, definitions: dg.Definitions, instance: dg.DagsterInstance, **process) -> dict:
        config = {"kafka_topic": self.topic}
        result = definitions.resolve_job_def(JOB).execute_in_process(
            run_config={
                "ops": {"poll_payments": {"config": config}, "land_payments": {"config": {**config, **process}}}
            },
            instance=instance,
            raise_on_error=False,
        )
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        return {k: v.value for k, v in result.asset_materializations_for_node("land_payments")[0].metadata.items()}

    def dead_letters(self) -> list:
        return read_topic(self.bootstrap, f"{self.topic}.dlq")


@pytest.fixture
def payments(harness, schema_registry, tmp_path) -> Payments:
    return Payments(harness, schema_registry, tmp_path)


def test_avro_payments_land_through_the_sensor_and_their_own_job(payments, monkeypatch):
    sent = payments.send(2_000, partitions=3, bad_ratio=0.05, seed=70)
    definitions = payments.definitions(monkeypatch)
    instance = payments.instance()
    sensor = definitions.resolve_sensor_def("kafka_polling_sensor")
    with dg.build_sensor_context(
        instance=instance, definitions=definitions, resources=definitions.resources
    ) as context:
        requests = sensor.evaluate_tick(context).run_requests or []
    (request,) = [r for r in requests if r.tags["kafka/topic"] == payments.topic]
    assert request.job_name == JOB and request.tags["kafka/lag"] == str(sent.sent)
    result = definitions.resolve_job_def(JOB).execute_in_process(
        run_config=request.run_config, tags=request.tags, instance=instance
    )
    assert result.success
    landed = result.asset_materializations_for_node("land_payments")[0].metadata
    assert (landed["events_landed"].value, landed["rejects"].value) == (sent.valid, sent.bad)
    assert landed["dead_letters_sent"].value == sent.bad

    assert payments.scalar("SELECT count(DISTINCT payment_id) FROM ingestion.payments") == sent.valid
    assert payments.scalar("SELECT count(*) FROM ingestion.payments WHERE paid_at IS NULL OR amount < 0") == 0
    reasons = dict(payments.query("SELECT reason, count(*) FROM ingestion.payments_rejects GROUP BY 1"))
    assert sum(reasons.values()) == sent.bad
    kinds = {
        "negative_amount": lambda r: r == "negative amount",
        "non_finite_amount": lambda r: r == "amount is not a finite number",
        "corrupt_body": lambda r: r.startswith("corrupt Avro body"),
        "not_wire_format": lambda r: r.startswith("not Confluent wire format"),
    }
    for kind, count in sent.kinds.items():
        if kind != "valid":
            assert sum(n for r, n in reasons.items() if kinds[kind](r)) == count, (kind, reasons)
    assert payments.end_offsets() == dict(
        payments.query('SELECT "partition", next_offset FROM ingestion.kafka_offsets')
    )
    # The dead-letter copy: each reject's value as received, its reason in a header.
    letters = payments.dead_letters()
    assert len(letters) == sent.bad
    assert sorted(dict(r.headers)[REASON_HEADER].decode() for r in letters) == sorted(
        r for r, n in reasons.items() for _ in range(n)
    )


MESSAGES = 20_000
BATCH_ROWS = 400


def test_kill_9_during_an_avro_landing_then_rerun_lands_each_message_once(payments, monkeypatch, tmp_path):
    sent = payments.send(MESSAGES, partitions=3, bad_ratio=0.05, seed=71)
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "ops": {
                    "poll_payments": {"config": {"kafka_topic": payments.topic}},
                    "land_payments": {"config": {"kafka_topic": payments.topic, "batch_rows": BATCH_ROWS}},
                }
            }
        )
    )
    (tmp_path / "dagster").mkdir()
    crashed = ManagedProcess(
        "crashed-avro-run",
        [
            sys.executable,
            "-m",
            "dagster",
            "job",
            "execute",
            "-m",
            "ingestion_patterns.definitions",
            "-j",
            JOB,
            "-c",
            str(config),
        ],
        env=payments.env,
        log_path=tmp_path / "crashed.log",
    ).start()
    kill_when(crashed, "landed batch 3/", timeout=300, interval=0.02)

    wait_until(lambda: _lock_released(payments.database), timeout=30, what="the killed step to release DuckDB")
    landed = payments.scalar(
        "SELECT (SELECT count(*) FROM ingestion.payments) + (SELECT count(*) FROM ingestion.payments_rejects)"
    )
    assert BATCH_ROWS * 3 <= landed < MESSAGES, landed

    rerun = payments.land(payments.definitions(monkeypatch), payments.instance(), batch_rows=BATCH_ROWS)
    assert rerun["events_landed"] + rerun["rejects"] == MESSAGES - landed
    assert payments.scalar("SELECT count(*) FROM ingestion.payments") == sent.valid
    assert payments.scalar("SELECT count(*) FROM ingestion.payments_rejects") == sent.bad
    assert payments.scalar("SELECT count(DISTINCT payment_id) FROM ingestion.payments") == sent.valid
    assert (
        payments.scalar(
            'SELECT count(DISTINCT ("partition", "offset")) FROM (SELECT "partition", "offset" FROM ingestion.payments '
            'UNION ALL SELECT "partition", "offset" FROM ingestion.payments_rejects)'
        )
        == MESSAGES
    )
    assert (
        dict(payments.query('SELECT "partition", next_offset FROM ingestion.kafka_offsets')) == payments.end_offsets()
    )


def test_a_registry_outage_fails_the_run_cleanly_and_the_rerun_completes(payments, monkeypatch):
    first = payments.send(300, partitions=1, seed=72)
    definitions = payments.definitions(monkeypatch)
    instance = payments.instance()
    assert payments.land(definitions, instance)["events_landed"] == first.valid
    # A new writer schema (an optional field added): an id no client has cached, and the registry is down.
    v2 = {
        **TRANSACTION_SCHEMA,
        "fields": [*TRANSACTION_SCHEMA["fields"], {"name": "note", "type": ["null", "string"], "default": None}],
    }
    second = payments.send(200, seed=73, schema=v2)
    assert second.schema_id != first.schema_id
    payments.registry.down()
    try:
        config = {"kafka_topic": payments.topic}
        failed = definitions.resolve_job_def(JOB).execute_in_process(
            run_config={"ops": {"poll_payments": {"config": config}, "land_payments": {"config": config}}},
            instance=instance,
            raise_on_error=False,
        )
        assert not failed.success
        error = failed.failure_data_for_node("land_payments").error
        assert "RegistryUnavailable" in error.to_string() and "unavailable (schema id" in error.to_string()
        # Nothing of the second lot landed or was rejected for the outage; the offsets stayed.
        assert payments.scalar("SELECT count(*) FROM ingestion.payments") == first.valid
        assert payments.scalar("SELECT count(*) FROM ingestion.payments_rejects") == 0
        assert payments.scalar("SELECT sum(next_offset) FROM ingestion.kafka_offsets") == first.sent
    finally:
        payments.registry.up()
    rerun = payments.land(definitions, instance)
    assert (rerun["events_landed"], rerun["rejects"]) == (second.valid, 0)
    assert payments.scalar("SELECT count(DISTINCT payment_id) FROM ingestion.payments") == first.valid + second.valid
