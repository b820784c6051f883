"""Helpers of the pull pattern's integration tests: a handle on a running mock API, the pull run
in-process, and both sides (source and final_data) read whole for comparison."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import duckdb
import yaml
from dagster_duckdb import DuckDBResource

from ingestion_devtools.processes import ManagedProcess
from ingestion_patterns.declarations import package_defs_folder
from ingestion_patterns.pull.assets import build_rest_api_source, with_page_size
from ingestion_patterns.pull.client import PullStats, SourceApiResource
from ingestion_patterns.pull.rest_api.client import RestApiClient
from ingestion_patterns.pull.source import RestApiSourceSpec
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

    def client(self, *, token: str | None = None, page_size: int = 700, **settings) -> PullClient:
        """The reference pull pointed at this server, with quick retries unless ``settings`` say otherwise."""
        options = {"max_retries": 10, "backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.5, **settings}
        return PullClient(self.url, token or self.token, page_size, SourceApiResource(**options))


def shipped_source_api(url: str) -> RestApiSourceSpec:
    """The reference source API's declaration (defs/rest_apis/source_api/defs.yaml) pointed at ``url``
    (its base_url is a Dagster template of SOURCE_API_URL, the one templated field)."""
    path = package_defs_folder() / "rest_apis" / "source_api" / "defs.yaml"
    return RestApiSourceSpec.model_validate({**yaml.safe_load(path.read_text())["attributes"], "base_url": url})


@dataclass
class PullClient:
    """Where a test points the reference pull: a server's URL and token, records per page, and the
    pull's transport settings (the ``source_api`` resource)."""

    url: str
    token: str
    page_size: int = 700
    settings: SourceApiResource = field(default_factory=SourceApiResource)

    def rest_client(self, stats: PullStats | None = None) -> RestApiClient:
        """The declarative client the extract pages this server with."""
        spec = with_page_size(shipped_source_api(self.url), self.page_size)
        return RestApiClient(spec, env={"SOURCE_API_TOKEN": self.token}, http=self.settings.http, stats=stats)


def run_pull(
    client: PullClient,
    db_path: Path,
    *,
    extract_config: dict | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """The reference pull (extract, check, load) in-process, as pull_job runs it, against ``client``'s server."""
    definitions = build_rest_api_source(shipped_source_api(client.url))
    config = {"batch_size": client.page_size, **(extract_config or {})}
    previous = os.environ.get("SOURCE_API_TOKEN")
    os.environ["SOURCE_API_TOKEN"] = client.token  # the declaration names the variable its token is in
    try:
        return dg.materialize(
            [*definitions.assets, *definitions.asset_checks],
            resources={"source_api": client.settings, "duckdb": DuckDBResource(database=str(db_path))},
            instance=instance or dg.DagsterInstance.ephemeral(),
            run_config={"ops": {"extract_source_data": {"config": config}}},
            raise_on_error=False,
        )
    finally:
        if previous is None:
            os.environ.pop("SOURCE_API_TOKEN", None)
        else:
            os.environ["SOURCE_API_TOKEN"] = previous


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
