"""Retention and alerting of the poll pattern against a real broker.

- ``retention_job`` runs in a loop (its own process, on the same Dagster instance) while a
  ``kafka_poll_job`` run is killed -9 midway through its landing and rerun: every message lands
  exactly once, and the poll plan rows go once their ranges have landed.
- ``stuck_source_alert`` posts a topic whose lag has not moved for ``ALERT_STUCK_AFTER`` to a real
  HTTP endpoint (tests/integration/alert_receiver.py in a process of its own), once, and says when
  it moves again; a topic declared in the sources file is watched as the shipped one is.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ingestion_devtools.kafka_producer import produce
from ingestion_devtools.processes import ManagedProcess, free_port, wait_until
from ingestion_patterns.definitions import build_definitions, defs
from ingestion_patterns.instance import prepare_dagster_home
from ingestion_patterns.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SCRIPTS = Path(__file__).parents[1]
MESSAGES = 20_000
BATCH_ROWS = 400


@dataclass
class RetentionLoop:
    process: ManagedProcess
    stop_file: Path
    log: Path

    def runs(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def wait_for_more(self, count: int = 1) -> None:
        seen = len(self.runs())
        wait_until(lambda: len(self.runs()) >= seen + count, timeout=180, what=f"{count} more retention runs")

    def stop(self) -> list[dict]:
        self.stop_file.touch()
        self.process.started.wait(timeout=180)
        return self.runs()


def _lock_released(database: Path) -> bool:
    try:
        duckdb.connect(str(database), read_only=True).close()
        return True
    except duckdb.IOException:
        return False


def _read(database: Path, sql: str) -> list[tuple]:
    wait_until(lambda: _lock_released(database), timeout=120, what="DuckDB's lock")
    with duckdb.connect(str(database), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_kill_9_and_rerun_beside_a_retention_loop_lands_each_message_once(harness, tmp_path, monkeypatch):
    sent = harness.send(MESSAGES, partitions=3, interval=0, bad_ratio=0.05, seed=41)
    env = {
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "DUCKDB_PATH": str(harness.database),
        "INGEST_DATA_DIR": str(tmp_path),
        "KAFKA_BOOTSTRAP_SERVERS": harness.bootstrap,
        "KAFKA_TOPIC": harness.topic,
        "KAFKA_GROUP_ID": f"group-{harness.topic}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    prepare_dagster_home(tmp_path / "dagster")
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    run_config = harness.run_config(batch_rows=BATCH_ROWS)

    stop_file, log = tmp_path / "stop-retention", tmp_path / "retention-loop.log"
    loop = RetentionLoop(
        ManagedProcess(
            "retention-loop",
            [sys.executable, str(SCRIPTS / "retention_loop.py"), str(stop_file)],
            env=env,
            log_path=log,
        ).start(),
        stop_file,
        log,
    )
    try:
        loop.wait_for_more(1)
        config = tmp_path / "run.yaml"
        config.write_text(json.dumps(run_config))
        crashed = ManagedProcess(
            "crashed-run",
            [sys.executable, "-m", "dagster", "job", "execute", "-m", "ingestion_patterns.definitions",
             "-j", "kafka_poll_job", "-c", str(config)],
            env=env, log_path=tmp_path / "crashed-run.log",
        ).start()  # fmt: skip
        try:
            wait_until(
                lambda: "landed batch 3/" in crashed.log_tail(400) or not crashed.running,
                timeout=300, what="the run to land its third batch", interval=0.02,
            )  # fmt: skip
            assert crashed.running, f"the run ended before it could be killed:\n{crashed.log_tail()}"
        finally:
            crashed.kill()
        wait_until(lambda: _lock_released(harness.database), timeout=30, what="the killed step to release DuckDB")
        for record in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            if record.dagster_run.job_name == "kafka_poll_job":  # what run monitoring does for a dead run
                instance.report_run_failed(record.dagster_run, "run worker was killed")
                instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)

        loop.wait_for_more(2)  # retention between the crash and the rerun: the plan is not landed, it stays
        assert _read(harness.database, "SELECT sum(to_offset) FROM ingestion.kafka_poll_plan") == [(MESSAGES,)]

        rerun = defs().resolve_job_def("kafka_poll_job").execute_in_process(run_config=run_config, instance=instance)
        assert rerun.success
        loop.wait_for_more(2)
    finally:
        summaries = loop.stop()

    assert all(summary["success"] for summary in summaries), loop.process.log_tail()
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_events") == sent.valid
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_rejects") == sent.bad
    assert harness.scalar("SELECT count(DISTINCT transaction_id) FROM ingestion.kafka_events") == sent.valid
    assert (
        harness.scalar(
            'SELECT count(*) FROM (SELECT "partition", "offset" FROM ingestion.kafka_events '
            'UNION ALL SELECT "partition", "offset" FROM ingestion.kafka_rejects)'
        )
        == MESSAGES
    )
    assert dict(harness.query('SELECT "partition", next_offset FROM ingestion.kafka_offsets')) == harness.end_offsets()
    # The landed plan is gone: retention removed each of its three partitions' rows once.
    assert harness.scalar("SELECT count(*) FROM ingestion.kafka_poll_plan") == 0
    assert sum(summary.get("kafka_poll_plan_rows_deleted", 0) for summary in summaries) == 3


def test_a_topic_whose_lag_does_not_move_is_posted_once_and_again_when_it_moves(harness, tmp_path):
    port = free_port()
    record = tmp_path / "alerts.jsonl"
    endpoint = ManagedProcess(
        "alert-receiver",
        [sys.executable, str(SCRIPTS / "alert_receiver.py"), str(port), str(record)],
        log_path=tmp_path / "alert-receiver.log",
    ).start()
    side_topic = f"{harness.topic}-side"
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "kafka_topics:\n"
        f"  - {{name: side_orders, topic: {side_topic}, columns: [{{name: transaction_id, type: varchar}}]}}\n"
    )
    try:
        endpoint.wait_http(f"http://127.0.0.1:{port}/health", timeout=30)
        settings = load_settings(
            {
                "DUCKDB_PATH": str(harness.database),
                "INGEST_DATA_DIR": str(tmp_path),
                "KAFKA_BOOTSTRAP_SERVERS": harness.bootstrap,
                "KAFKA_TOPIC": harness.topic,
                "ALERT_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
                "ALERT_STUCK_AFTER": "3s",
                "INGEST_SOURCES_FILE": str(sources),
            }
        )
        definitions = build_definitions(settings)
        home = tmp_path / "dagster"
        home.mkdir()
        instance = dg.DagsterInstance.from_config(str(home))
        sensor = definitions.resolve_sensor_def("stuck_source_alert")
        cursor: list[str | None] = [None]

        def tick() -> None:
            with dg.build_sensor_context(
                instance=instance, definitions=definitions, resources=definitions.resources, cursor=cursor[0]
            ) as context:
                cursor[0] = sensor.evaluate_tick(context).cursor

        def texts() -> list[str]:
            lines = record.read_text().splitlines() if record.exists() else []
            return [json.loads(json.loads(line)["body"])["text"] for line in lines]

        harness.send(500, partitions=2, interval=0, seed=42)
        asyncio.run(produce(harness.bootstrap, side_topic, 30, partitions=1))
        tick()  # lag 500 and 30, offsets not stored: the clocks start
        assert texts() == []
        time.sleep(3.5)
        tick()
        tick()
        stuck = sorted(texts())
        assert len(stuck) == 2, stuck
        assert stuck[0].startswith(f"⏳ Kafka topic {harness.topic} is stuck: 500 messages behind")
        assert stuck[1].startswith(f"⏳ Kafka topic {side_topic} is stuck: 30 messages behind")

        harness.land()
        tick()
        tick()
        assert texts()[2:] == [f"✅ Kafka topic {harness.topic} is moving again: caught up."]
    finally:
        endpoint.stop()
