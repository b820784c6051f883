"""Kill -9 a real ``kafka_poll_job`` run (``dagster job execute`` in its own process group, each step
in a fresh process) while it lands, then rerun it: every message is landed exactly once."""

from __future__ import annotations

import sys

import duckdb
import pytest
from dg_project import kill_when

from ingestion_devtools.processes import ManagedProcess, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

MESSAGES = 20_000
BATCH_ROWS = 400  # 50 landing transactions: a wide window to crash in


def dagster_run(harness, tmp_path, name: str) -> ManagedProcess:
    """``dagster job execute`` of kafka_poll_job, with the multiprocess executor: poll and process
    run in separate fresh processes, so the poll plan in DuckDB must carry what to land between them."""
    config = tmp_path / "run.yaml"
    config.write_text(
        "ops:\n"
        f"  poll_kafka_events:\n    config:\n      kafka_topic: {harness.topic}\n"
        f"  process_kafka_events:\n    config:\n      kafka_topic: {harness.topic}\n      batch_rows: {BATCH_ROWS}\n"
    )
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    return ManagedProcess(
        name,
        [
            sys.executable,
            "-m",
            "dagster",
            "job",
            "execute",
            "-m",
            "ingestion_patterns.definitions",
            "-j",
            "kafka_poll_job",
            "-c",
            str(config),
        ],
        env={
            "DAGSTER_HOME": str(home),
            "DUCKDB_PATH": str(harness.database),
            "KAFKA_BOOTSTRAP_SERVERS": harness.bootstrap,
            "KAFKA_TOPIC": harness.topic,
            "KAFKA_GROUP_ID": f"group-{harness.topic}",
        },
        log_path=tmp_path / f"{name}.log",
    )


def _lock_released(database) -> bool:
    try:
        duckdb.connect(str(database), read_only=True).close()
        return True
    except duckdb.IOException:
        return False


def test_kill_9_during_landing_then_rerun_lands_each_message_once(harness, tmp_path):
    sent = harness.send(MESSAGES, partitions=3, interval=0, bad_ratio=0.05, seed=40)

    crashed = dagster_run(harness, tmp_path, "crashed-run").start()
    kill_when(crashed, "landed batch 3/", timeout=300, interval=0.02)
    # The step process holding DuckDB's lock dies a moment after the run process.
    wait_until(lambda: _lock_released(harness.database), timeout=30, what="the killed step to release DuckDB")

    # Midway: some batches landed, the rest still only planned, and data and offsets agree.
    landed = harness.scalar(
        "SELECT (SELECT count(*) FROM ingestion.kafka_events) + (SELECT count(*) FROM ingestion.kafka_rejects)"
    )
    assert BATCH_ROWS * 3 <= landed < MESSAGES, landed
    planned = dict(harness.query('SELECT "partition", to_offset FROM ingestion.kafka_poll_plan'))
    assert sum(planned.values()) == MESSAGES  # the plan covered everything; the kill came midway
    rows_per_partition = dict(
        harness.query(
            'SELECT "partition", count(*) FROM (SELECT "partition" FROM ingestion.kafka_events '
            'UNION ALL SELECT "partition" FROM ingestion.kafka_rejects) GROUP BY 1'
        )
    )
    stored = dict(harness.query('SELECT "partition", next_offset FROM ingestion.kafka_offsets'))
    assert rows_per_partition == {p: n for p, n in stored.items() if n}  # offsets start at 0, no gaps

    # The rerun, from yet another process (this one), resumes from the offsets stored with the data.
    rerun = harness.land(batch_rows=BATCH_ROWS)["process_kafka_events"]
    assert rerun["events_landed"] + rerun["rejects"] == MESSAGES - landed

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
