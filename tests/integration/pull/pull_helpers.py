"""Helpers of the pull pattern's integration tests: a handle on a running mock API, the pull run
in-process, and both sides (source and final_data) read whole for comparison."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from ingestion_devtools.processes import ManagedProcess
from ingestion_patterns.pull.assets import extract_source_data, load_to_storage, validate_extracted_data
from ingestion_patterns.pull.client import SourceApiResource
from ingestion_patterns.pull.validate import CONTRACT

TOKEN = "test-token"


@dataclass
class MockApi:
    url: str
    token: str
    process: ManagedProcess

    def _request(self, method: str, path: str, body: dict | None = None) -> urllib.request.Request:
        data = json.dumps(body).encode() if body is not None else None
        return urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )

    def admin(self, path: str, body: dict) -> dict:
        with urllib.request.urlopen(self._request("POST", path, body), timeout=60) as response:
            return json.loads(response.read())

    def mutate(self, *, create: int = 0, update: int = 0) -> dict:
        return self.admin("/admin/mutate", {"create": create, "update": update})

    def export(self) -> list[dict]:
        """Every current record, read by id (not through the paging the client uses)."""
        with urllib.request.urlopen(self._request("GET", "/admin/export"), timeout=120) as response:
            return [json.loads(line) for line in response.read().splitlines() if line]

    def client(self, **overrides) -> SourceApiResource:
        options = {
            "base_url": self.url,
            "token": self.token,
            "page_size": 700,
            "max_retries": 10,
            "backoff_initial_seconds": 0.05,
            "backoff_max_seconds": 0.5,
            **overrides,
        }
        return SourceApiResource(**options)


def run_pull(
    api_client: SourceApiResource,
    db_path: Path,
    *,
    extract_config: dict | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """The pull (extract, check, load) in-process, as the job runs it."""
    run_config = {"ops": {"extract_source_data": {"config": extract_config}}} if extract_config else None
    return dg.materialize(
        [extract_source_data, validate_extracted_data, load_to_storage],
        resources={"source_api": api_client, "duckdb": DuckDBResource(database=str(db_path))},
        instance=instance or dg.DagsterInstance.ephemeral(),
        run_config=run_config,
        raise_on_error=False,
    )


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [event] = [
        e for e in result.get_asset_materialization_events() if e.asset_key and e.asset_key.to_user_string() == asset
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def final_rows(db_path: Path, table: str = "final_data", columns: Sequence[str] = CONTRACT.names) -> list[tuple]:
    """A final table's ``columns`` (default: final_data's contract), ordered by id (timestamps as ISO
    strings like the API's)."""
    with duckdb.connect(str(db_path), read_only=True) as conn:
        return conn.execute(
            f"SELECT {', '.join(_as_api(c) for c in columns)} FROM ingestion.{table} ORDER BY id"
        ).fetchall()


def source_rows(api: MockApi, columns: Sequence[str] = CONTRACT.names) -> list[tuple]:
    """The source's current records in the same shape as ``final_rows``."""
    return [tuple(record[c] for c in columns) for record in sorted(api.export(), key=lambda r: r["id"])]


def _as_api(column: str) -> str:
    if column.endswith("_at"):
        return f"strftime({column} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') AS {column}"
    return column


def query(db_path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()
