"""The ``KafkaTopicSource`` component type: dg lists it; a scaffolded instance passes ``dg check defs``
as written; pointed at a fresh topic with its own JSON shape, it lands through its own job, requested by
the one ``kafka_polling_sensor``, with no code change (a real broker, a real DuckDB file)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dg_project import dg_command, scaffolded_instance

from ingestion_patterns import warehouse
from ingestion_patterns.instance import prepare_dagster_home
from ingestion_patterns.poll.client import KafkaResource

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TYPE = "ingestion_patterns.components.KafkaTopicSource"

# A shape unlike the transactions: nested keys, an integer, a boolean, a key with a dash.
SHAPE = """\
  columns:
    - {name: sensor_id, type: bigint, path: device.id, required: true}
    - {name: reading, type: double, path: measure.value, required: true}
    - {name: unit, type: varchar, path: measure.unit-name}
    - {name: healthy, type: boolean, path: device.ok}
    - {name: read_at, type: timestamptz, path: at, required: true}
  checks:
    - {sql: reading BETWEEN -50 AND 150, reason: reading out of range}
"""


@pytest.fixture
def scaffolded() -> Iterator[tuple[str, Path]]:
    """A new instance scaffolded into the project's defs/ (removed afterwards): its name and folder."""
    with scaffolded_instance(TYPE, "kafka_topics", "readings") as instance:
        yield instance


def test_dg_lists_the_component_type():
    listed = dg_command("list", "components", "--json")
    assert listed.returncode == 0, listed.stderr
    assert TYPE in {item["key"] for item in json.loads(listed.stdout)["items"]}


def reading(number: int) -> dict:
    return {
        "device": {"id": 1000 + number, "ok": number % 2 == 0},
        "measure": {"value": 20.5 + number, "unit-name": "C"},
        "at": f"2026-11-29T10:{number % 60:02d}:00Z",
    }


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    async def send() -> None:
        producer = KafkaResource(bootstrap_servers=bootstrap).producer()
        await producer.start()
        try:
            for value in values:
                await producer.send(topic, value=value)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(send())


def test_a_scaffolded_topic_checks_and_lands_a_new_json_shape_through_its_own_job(
    scaffolded, bootstrap, tmp_path, monkeypatch
):
    name, folder = scaffolded
    defs_yaml = folder / "defs.yaml"
    text = defs_yaml.read_text()
    assert f"type: {TYPE}" in text and "# dead_letter_topic:" in text, "commented defaults"
    checked = dg_command("check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr  # as written

    # Pointed at a fresh topic with another shape: only the declaration changes.
    topic = f"readings-{uuid.uuid4().hex[:8]}"
    attributes = text[: text.index("  columns:")].replace(f"topic: {name.replace('_', '-')}", f"topic: {topic}")
    defs_yaml.write_text(attributes + SHAPE)
    checked = dg_command("check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    good = [reading(n) for n in range(40)]
    bad = [
        {**reading(90), "measure": {"value": "warm"}},  # not a number
        {**reading(91), "measure": {"value": 400}},  # the check
        {"measure": {"value": 1}, "at": "2026-11-29T10:00:00Z"},  # device.id missing
    ]
    produce(bootstrap, topic, [json.dumps(v).encode() for v in good + bad] + [b'{"device": {"id": 1, "ok": NaN'])
    database = tmp_path / "warehouse.duckdb"
    for variable, value in {
        "DUCKDB_PATH": str(database),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": f"absent-{uuid.uuid4().hex[:8]}",  # the shipped instance's topic: none here
        "INGEST_DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(variable, value)
    instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(tmp_path / "dagster")))

    from ingestion_patterns.definitions import defs

    definitions = defs()
    sensor = definitions.resolve_sensor_def("kafka_polling_sensor")
    with dg.build_sensor_context(
        instance=instance, definitions=definitions, resources=definitions.resources
    ) as context:
        requests = sensor.evaluate_tick(context).run_requests or []
    assert [(r.job_name, r.tags["kafka/topic"], r.tags["kafka/lag"]) for r in requests] == [
        (f"{name}_kafka_job", topic, str(len(good) + len(bad) + 1))
    ]
    result = definitions.resolve_job_def(requests[0].job_name).execute_in_process(
        run_config=requests[0].run_config, tags=requests[0].tags, instance=instance
    )
    assert result.success
    landed = result.asset_materializations_for_node(f"land_{name}")[0].metadata
    assert (landed["events_landed"].value, landed["rejects"].value) == (len(good), len(bad) + 1)

    conn = warehouse.connect(database, read_only=True)
    try:
        rows = conn.execute(f"SELECT sensor_id, reading, unit, healthy FROM ingestion.{name} ORDER BY 1").fetchall()
        reasons = sorted(r for (r,) in conn.execute(f"SELECT reason FROM ingestion.{name}_rejects").fetchall())
        offsets = conn.execute("SELECT sum(next_offset) FROM ingestion.kafka_offsets WHERE topic = ?", [topic])
        assert offsets.fetchone() == (len(good) + len(bad) + 1,)
    finally:
        conn.close()
    assert rows == [(1000 + n, 20.5 + n, "C", n % 2 == 0) for n in range(40)]
    assert reasons == [
        "malformed JSON",
        "measure.value is not a number",
        "missing field(s): device.id",
        "reading out of range",
    ]

    # Landed: the next tick sees no lag on it.
    with dg.build_sensor_context(
        instance=instance, definitions=definitions, resources=definitions.resources
    ) as context:
        assert not sensor.evaluate_tick(context).run_requests
