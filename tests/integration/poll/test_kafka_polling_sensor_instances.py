"""One kafka_polling_sensor over several declared topics (real broker, real DuckDB file): one tick asks
for a run of each topic's own job where that topic has lag, and the runs land each topic in its table."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from ingestion_patterns.poll.assets import build_kafka_polling_sensor, build_kafka_topic
from ingestion_patterns.poll.source import KafkaTopicSpec

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def spec(name: str, topic: str) -> KafkaTopicSpec:
    return KafkaTopicSpec(name=name, topic=topic, columns=[{"name": "n", "type": "bigint", "required": True}])


def test_one_tick_asks_for_each_lagging_topic_s_own_job(harness):
    from test_kafka_topic_component import produce

    topics = {"first": f"{harness.topic}-a", "second": f"{harness.topic}-b", "idle": f"{harness.topic}-c"}
    built = {name: build_kafka_topic(spec(name, topic)) for name, topic in topics.items()}
    produce(harness.bootstrap, topics["first"], [json.dumps({"n": i}).encode() for i in range(5)])
    produce(harness.bootstrap, topics["second"], [json.dumps({"n": i}).encode() for i in range(3)] + [b"{}"])
    produce(harness.bootstrap, topics["idle"], [])
    jobs = [job for _, _, job in built.values()]
    definitions = dg.Definitions(
        assets=[asset for poll, land, _ in built.values() for asset in (poll, land)],
        jobs=jobs,
        sensors=[build_kafka_polling_sensor(jobs)],
        resources=harness.resources(),
    )
    sensor = definitions.resolve_sensor_def("kafka_polling_sensor")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(
            instance=instance, definitions=definitions, resources=harness.resources()
        ) as context:
            result = sensor.evaluate_tick(context)
        requests = {r.job_name: r for r in result.run_requests or []}
        assert sorted(requests) == ["first_kafka_job", "second_kafka_job"]
        assert requests["second_kafka_job"].tags["kafka/lag"] == "4"
        for request in requests.values():
            run = definitions.resolve_job_def(request.job_name).execute_in_process(
                run_config=request.run_config, instance=instance
            )
            assert run.success
        with dg.build_sensor_context(
            instance=instance, definitions=definitions, resources=harness.resources()
        ) as context:
            assert not sensor.evaluate_tick(context).run_requests
    assert harness.query("SELECT count(*) FROM ingestion.first") == [(5,)]
    assert harness.query("SELECT count(*) FROM ingestion.second") == [(3,)]
    assert harness.query("SELECT reason FROM ingestion.second_rejects") == [("missing field(s): n",)]
