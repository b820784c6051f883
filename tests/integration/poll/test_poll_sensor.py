"""kafka_polling_sensor on a real broker and a real DuckDB file: it asks for a run only when the
topic holds messages past the stored offsets, and never takes DuckDB's write lock."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import pytest

from ingestion_patterns.poll.assets import kafka_polling_sensor, poll_kafka_events, process_kafka_events

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def tick(harness):
    def evaluate():
        return kafka_polling_sensor(dg.build_sensor_context(resources=harness.resources()))

    return evaluate


def test_sensor_skips_at_zero_lag_and_fires_when_lag_appears(harness, tick):
    absent = tick()
    assert isinstance(absent, dg.SkipReason) and "does not exist" in absent.skip_message

    harness.send(30, partitions=3, interval=0, seed=30)
    first = tick()
    assert isinstance(first, dg.RunRequest)
    assert first.tags["kafka/lag"] == "30"
    assert first.run_key == f"{harness.topic}@0:start,1:start,2:start"
    assert tick().run_key == first.run_key  # same stored offsets: Dagster starts no second run

    # The run it asks for, with its run config, lands everything.
    result = dg.materialize(
        [poll_kafka_events, process_kafka_events], resources=harness.resources(), run_config=first.run_config
    )
    assert result.success
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_events") == 30

    idle = tick()
    assert isinstance(idle, dg.SkipReason)
    assert "lag 0" in idle.skip_message

    harness.send(5, interval=0, seed=31)
    second = tick()
    assert isinstance(second, dg.RunRequest)
    assert second.tags["kafka/lag"] == "5"
    stored = dict(harness.query('SELECT "partition", next_offset FROM ingestion.kafka_offsets'))
    assert second.run_key == f"{harness.topic}@" + ",".join(f"{p}:{stored[p]}" for p in sorted(stored))


def test_sensor_skips_while_a_run_holds_the_write_lock(harness, tick):
    harness.send(5, partitions=1, interval=0, seed=32)
    harness.land()
    harness.send(5, interval=0, seed=33)
    holder = subprocess.Popen(  # another process writing the warehouse, as a run does
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); c.execute('BEGIN'); "
            "print('locked', flush=True); time.sleep(120)",
            str(harness.database),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        busy = tick()
        assert isinstance(busy, dg.SkipReason)
        assert "warehouse busy" in busy.skip_message
    finally:
        holder.kill()
        holder.wait()
    assert isinstance(tick(), dg.RunRequest)  # the lock is gone: lag 5 asks for a run


def test_sensor_skips_when_kafka_is_not_configured(monkeypatch, database):
    from dagster_duckdb import DuckDBResource

    from ingestion_patterns.poll.client import KafkaResource

    context = dg.build_sensor_context(
        resources={"kafka": KafkaResource(bootstrap_servers=""), "duckdb": DuckDBResource(database=str(database))}
    )
    skipped = kafka_polling_sensor(context)
    assert isinstance(skipped, dg.SkipReason) and "KAFKA_BOOTSTRAP_SERVERS" in skipped.skip_message


def test_after_a_failed_run_the_sensor_asks_again_under_a_new_key(harness):
    from ingestion_devtools.processes import free_port
    from ingestion_patterns.poll.assets import kafka_poll_job

    harness.send(5, partitions=1, interval=0, seed=34)
    with dg.instance_for_test() as instance:

        def tick():
            return kafka_polling_sensor(dg.build_sensor_context(instance=instance, resources=harness.resources()))

        first = tick()
        assert isinstance(first, dg.RunRequest)
        job = dg.Definitions(
            assets=[poll_kafka_events, process_kafka_events], jobs=[kafka_poll_job], resources=harness.resources()
        ).resolve_job_def("kafka_poll_job")
        unreachable = f"127.0.0.1:{free_port()}"  # this run fails: its broker does not exist
        config = {
            "ops": {
                name: {"config": {"kafka_topic": harness.topic, "bootstrap_servers": unreachable}}
                for name in ("poll_kafka_events", "process_kafka_events")
            }
        }
        failed = job.execute_in_process(run_config=config, instance=instance, tags=first.tags, raise_on_error=False)
        assert not failed.success

        retry = tick()
        assert isinstance(retry, dg.RunRequest)
        assert retry.run_key == first.run_key + "#retry1"
