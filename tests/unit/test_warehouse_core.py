"""The warehouse core: one transaction helper, and sessions that release DuckDB's file lock on failure."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from ingestion_patterns import warehouse

DDL = ["CREATE TABLE IF NOT EXISTS ingestion.t (id INTEGER PRIMARY KEY)"]


def _another_process_can_write(path) -> bool:
    """DuckDB locks its file per process: a second process can open it only once the first let go."""
    script = f"import duckdb; duckdb.connect({str(path)!r}).execute('CHECKPOINT')"
    return subprocess.run([sys.executable, "-c", script], capture_output=True).returncode == 0


def test_a_failed_session_releases_the_duckdb_lock(tmp_path):
    path = tmp_path / "w.duckdb"
    resource = DuckDBResource(database=str(path))
    with pytest.raises(RuntimeError, match="step failed"), warehouse.session(resource, DDL) as conn:
        conn.execute("INSERT INTO ingestion.t VALUES (1)")
        assert not _another_process_can_write(path), "while the session is open, it holds the lock"
        raise RuntimeError("step failed")
    assert _another_process_can_write(path)


def test_transaction_commits_on_success_and_rolls_back_on_any_error():
    conn = duckdb.connect()
    warehouse.ensure_schema(conn, DDL)
    with warehouse.transaction(conn):
        conn.execute("INSERT INTO ingestion.t VALUES (1)")
    with pytest.raises(KeyboardInterrupt), warehouse.transaction(conn):
        conn.execute("INSERT INTO ingestion.t VALUES (2)")
        raise KeyboardInterrupt  # not an Exception: a signal's, which must roll back too
    with pytest.raises(duckdb.ConstraintException), warehouse.transaction(conn):
        conn.execute("INSERT INTO ingestion.t VALUES (3)")
        conn.execute("INSERT INTO ingestion.t VALUES (1)")  # duplicate key: the whole transaction goes
    assert conn.execute("SELECT list(id ORDER BY id) FROM ingestion.t").fetchone()[0] == [1]
    assert warehouse.table_counts(conn) == {"t": 1}
