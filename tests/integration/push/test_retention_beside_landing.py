"""Retention beside landing: ``retention_job`` runs in a loop (its own process, on the same Dagster
instance, as the daemon's schedule would) while a landing run is killed -9 midway and rerun, with a
retention window of one second. Every payload still lands exactly once, and what retention deleted
it could delete: landed rows only."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ingestion_devtools.processes import ManagedProcess, wait_until
from ingestion_patterns import warehouse
from ingestion_patterns.definitions import defs
from ingestion_patterns.instance import prepare_dagster_home
from ingestion_patterns.maintenance.warehouse_retention import dedupe_webhook_data
from ingestion_patterns.push.inbox import NewWebhook, open_inbox

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

LOOP_SCRIPT = Path(__file__).parents[1] / "retention_loop.py"
JOB = "webhook_ingestion_job"
PAYLOADS = 6000


@dataclass
class RetentionLoop:
    process: ManagedProcess
    stop_file: Path
    log: Path

    def runs(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def stop(self) -> list[dict]:
        """Let the current run finish, then stop; every run's summary."""
        self.stop_file.touch()
        self.process.started.wait(timeout=180)
        return self.runs()


def start_retention_loop(tmp_path: Path, env: dict[str, str]) -> RetentionLoop:
    stop_file, log = tmp_path / "stop-retention", tmp_path / "retention-loop.log"
    process = ManagedProcess(
        "retention-loop", [sys.executable, str(LOOP_SCRIPT), str(stop_file)], env=env, log_path=log
    ).start()
    return RetentionLoop(process, stop_file, log)


@pytest.fixture
def env(tmp_path, monkeypatch, inbox_url) -> Iterator[dict[str, str]]:
    values = {
        "DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "WEBHOOK_INBOX_URL": inbox_url,
        "INGEST_DATA_DIR": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "WEBHOOK_INBOX_RETENTION": "1s",  # landed rows go one second after they landed
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    prepare_dagster_home(tmp_path / "dagster")
    yield values


def fill(inbox_url: str, source: str, ids: list[str]) -> None:
    async def put_all() -> None:
        async with open_inbox(inbox_url) as inbox:
            for start in range(0, len(ids), 500):
                body = json.dumps({"timestamp": "2026-01-01T00:00:00Z", "data": {"amount": 1}}).encode()
                results = await asyncio.gather(
                    *(inbox.put(NewWebhook(source, event_id, body, {})) for event_id in ids[start : start + 500])
                )
                assert all(result.accepted for result in results)

    asyncio.run(put_all())


def inbox_sizes(inbox_url: str):
    async def read():
        async with open_inbox(inbox_url) as inbox:
            return await inbox.sizes()

    return asyncio.run(read())


def landed(duckdb_path: str, source: str) -> list[str]:
    with duckdb.connect(duckdb_path, read_only=True) as conn:
        rows = conn.execute("SELECT event_id FROM ingestion.webhook_data WHERE source_id = ?", [source]).fetchall()
    return [row[0] for row in rows]


def test_landing_killed_and_rerun_beside_a_retention_loop_lands_each_payload_once(env, tmp_path):
    inbox_url, db = env["WEBHOOK_INBOX_URL"], env["DUCKDB_PATH"]
    ids = [f"bulk-{i}" for i in range(PAYLOADS)]
    fill(inbox_url, "bulk", ids)
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    definitions = defs()

    loop = start_retention_loop(tmp_path, env)
    try:
        wait_until(lambda: len(loop.runs()) >= 1 or not loop.process.running, timeout=180, what="a first retention run")
        assert loop.runs() and loop.runs()[0]["success"], loop.process.log_tail()

        config = tmp_path / "run.yaml"
        config.write_text(
            json.dumps({"ops": {"process_webhook_data": {"config": {"source_id": "bulk", "batch_size": 200}}}})
        )
        run = ManagedProcess(
            "killed-run",
            [sys.executable, "-m", "dagster", "job", "execute", "-m", "ingestion_patterns.definitions", "-j", JOB,
             "-c", str(config)],
            env=env, log_path=tmp_path / "killed-run.log",
        ).start()  # fmt: skip
        wait_until(
            lambda: inbox_sizes(inbox_url).pending <= PAYLOADS - 1000 or not run.running,
            timeout=240, what="five landed batches", interval=0.05,
        )  # fmt: skip
        run.kill()
        assert 0 < inbox_sizes(inbox_url).pending < PAYLOADS, "the kill must land mid-run"
        # What run monitoring does for the dead run: fail it and free its duckdb slot.
        for record in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            if record.dagster_run.job_name == JOB:
                instance.report_run_failed(record.dagster_run, "run worker was killed")
                instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)

        # Retention goes on between the crash and the rerun, and beside the rerun.
        runs_before_rerun = len(loop.runs())
        wait_until(lambda: len(loop.runs()) > runs_before_rerun + 1, timeout=180, what="two more retention runs")
        rerun = definitions.resolve_job_def(JOB).execute_in_process(
            run_config={"ops": {"process_webhook_data": {"config": {"source_id": "bulk", "batch_size": 200}}}},
            instance=instance,
        )
        assert rerun.success
        runs_after_rerun = len(loop.runs())
        # Until retention has caught up: on a slow machine two passes can both start within the last batch's second.
        wait_until(
            lambda: len(loop.runs()) > runs_after_rerun + 1 and inbox_sizes(inbox_url).done == 0,
            timeout=180,
            what="retention after the rerun",
        )
    finally:
        summaries = loop.stop()

    assert all(summary["success"] for summary in summaries), loop.process.log_tail()
    deleted = sum(summary.get("webhook_inbox_rows_deleted", 0) for summary in summaries)
    assert deleted == PAYLOADS, "every landed row was deleted once its second had passed, no row twice"

    rows = landed(db, "bulk")
    assert len(rows) == len(set(rows)) == PAYLOADS
    assert set(rows) == set(ids)
    sizes = inbox_sizes(inbox_url)
    assert (sizes.total, sizes.pending) == (0, 0)

    # Past the window the inbox has forgotten an id: sent again it is accepted and lands a second row,
    # which retention's dedup (purge_warehouse's last step) removes, keeping the first.
    fill(inbox_url, "bulk", ids[:3])
    again = definitions.resolve_job_def(JOB).execute_in_process(
        run_config={"ops": {"process_webhook_data": {"config": {"source_id": "bulk"}}}}, instance=instance
    )
    metadata = again.asset_materializations_for_node("process_webhook_data")[0].metadata
    assert (metadata["processed"].value, metadata["duplicates"].value) == (3, 0)
    assert len(landed(db, "bulk")) == PAYLOADS + 3
    with warehouse.connect(db) as conn:
        assert dedupe_webhook_data(conn) == 3
    rows = landed(db, "bulk")
    assert len(rows) == len(set(rows)) == PAYLOADS
