"""Retention beside the pull: ``retention_job`` runs in a loop (its own process, on the same Dagster
instance) with a one-second raw window, while a pull is killed -9 midway through its pages and rerun.
Retention deletes the raw pages already loaded into final_data and never the killed run's pages,
which are not loaded yet; the rerun loads them, and final_data matches the source exactly."""

from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import duckdb
import psycopg
import pytest
import yaml
from dg_project import group_gone
from pull_helpers import final_rows, materialization_metadata, source_rows

from ingestion_devtools.processes import ManagedProcess, wait_until
from ingestion_patterns.definitions import defs
from ingestion_patterns.instance import INSTANCE_YAML, prepare_dagster_home

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

LOOP_SCRIPT = Path(__file__).parents[1] / "retention_loop.py"
RUN_CONFIG = {"ops": {"extract_source_data": {"config": {"batch_size": 300}}}}


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


def read(db: Path, sql: str) -> list[tuple]:
    """A read-only query; waits while a writer (a run, the retention loop) holds DuckDB's lock."""
    for _ in range(600):
        try:
            with duckdb.connect(str(db), read_only=True) as conn:
                return conn.execute(sql).fetchall()
        except duckdb.IOException:
            time.sleep(0.05)
    raise TimeoutError("DuckDB stayed locked")


def _postgres_dagster_home(home: Path, postgres_url: str) -> None:
    """DAGSTER_HOME with the local dagster.yaml on a fresh PostgreSQL database, the cluster's storage.
    Three processes claim the duckdb pool's one slot here (this test's runs, the killed job, the
    retention loop): Dagster's SQLite storage claims without row locks, and a slot freed between
    another process's check and its queueing is never handed on (seen: the loop's step queued for
    good beside a free slot); PostgreSQL claims under row locks."""
    name = f"dagster_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    server = urlsplit(postgres_url)
    # postgres_db, as the chart configures it: SQLAlchemy 2.1 would pick psycopg 3, which dagster-postgres breaks.
    database: dict[str, object] = {
        "username": server.username,
        "password": server.password or "",
        "hostname": server.hostname,
    }
    database |= {"port": server.port, "db_name": name, "scheme": "postgresql+psycopg2"}  # as the chart sets it
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(
        INSTANCE_YAML.read_text() + "\n" + yaml.safe_dump({"storage": {"postgres": {"postgres_db": database}}})
    )


def test_pull_killed_and_rerun_beside_a_retention_loop_loads_every_record_once(
    start_mock_api, postgres_url, tmp_path, monkeypatch
):
    api = start_mock_api(records=9000, latency_ms=200)  # 30 pages of 300
    db = tmp_path / "warehouse.duckdb"
    env = {
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "DUCKDB_PATH": str(db),
        "INGEST_DATA_DIR": str(tmp_path),
        "SOURCE_API_URL": api.url,
        "SOURCE_API_TOKEN": api.token,
        "PULL_RAW_RETENTION": "1s",  # loaded raw pages go one second after they landed
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _postgres_dagster_home(tmp_path / "dagster", postgres_url)
    prepare_dagster_home(tmp_path / "dagster")
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    pull_job = defs().resolve_job_def("pull_job")

    stop_file, log = tmp_path / "stop-retention", tmp_path / "retention-loop.log"
    loop = RetentionLoop(
        ManagedProcess(
            "retention-loop", [sys.executable, str(LOOP_SCRIPT), str(stop_file)], env=env, log_path=log
        ).start(),
        stop_file,
        log,
    )
    try:
        first = pull_job.execute_in_process(run_config=RUN_CONFIG, instance=instance)
        assert first.success
        assert materialization_metadata(first, "load_to_storage")["inserted"] == 9000

        api.mutate(create=300, update=6000)  # the next pull: 21 pages
        config = tmp_path / "run.yaml"
        config.write_text(json.dumps(RUN_CONFIG))
        job = ManagedProcess(
            "pull_job",
            [sys.executable, "-m", "dagster", "job", "execute", "-m", "ingestion_patterns.definitions",
             "-j", "pull_job", "-c", str(config)],
            env=env, log_path=tmp_path / "pull_job.log",
        ).start()  # fmt: skip
        try:
            wait_until(lambda: "landed page 6:" in job.log_tail(400) or not job.running, timeout=240,
                       what="the job to land its sixth page")  # fmt: skip
            assert job.running, job.log_tail()
        finally:
            job.kill()
        wait_until(lambda: group_gone(job.started.pid), timeout=30, what="the killed job's processes to exit")
        for record in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
            if record.dagster_run.job_name == "pull_job":  # what run monitoring does for a dead run
                instance.report_run_failed(record.dagster_run, "run worker was killed")
                instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)

        # Retention runs past the crash: the first pull's pages are loaded and older than the window,
        # the killed run's pages are not loaded, however old they get.
        time.sleep(1.5)
        loop.wait_for_more(2)
        [(loaded_through,)] = read(db, "SELECT loaded_page_seq FROM ingestion.pull_state")
        [(unloaded_pages, unloaded_rows)] = read(
            db, f"SELECT count(*), coalesce(sum(record_count), 0) FROM ingestion.pull_pages WHERE page_seq > {loaded_through}"
        )  # fmt: skip
        assert unloaded_pages >= 6
        assert read(db, "SELECT count(*) FROM ingestion.raw_extract") == [(unloaded_rows,)]
        assert read(db, f"SELECT count(*) FROM ingestion.pull_pages WHERE page_seq <= {loaded_through}") == [(0,)]

        rerun = pull_job.execute_in_process(run_config=RUN_CONFIG, instance=instance)
        assert rerun.success
        extract = materialization_metadata(rerun, "extract_source_data")
        assert extract["record_count"] == 6300 - unloaded_rows
        assert materialization_metadata(rerun, "load_to_storage")["inserted"] == 300
        time.sleep(1.5)
        loop.wait_for_more(2)
    finally:
        summaries = loop.stop()

    assert all(summary["success"] for summary in summaries), loop.process.log_tail()
    assert final_rows(db) == source_rows(api)
    assert read(db, "SELECT count(*) FROM ingestion.final_data") == [(9300,)]
    # Every raw row was loaded, so retention deleted each one exactly once: 9000 + 6300 landed in all.
    assert sum(summary.get("raw_rows_deleted", 0) for summary in summaries) == 15_300
    assert read(db, "SELECT count(*) FROM ingestion.raw_extract") == [(0,)]
