"""The ``RestApiSource`` component type: dg lists it; an instance scaffolded into the project passes
``dg check defs`` as written and, pointed at the mock API (a real server in its own process), lands
every record in its own tables through its own job, once, and a second run lands nothing twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dg_project import dg_command, scaffolded_instance
from pull_helpers import final_rows, query, source_rows

from ingestion_patterns.instance import prepare_dagster_home

pytestmark = pytest.mark.integration

TYPE = "ingestion_patterns.components.RestApiSource"


@pytest.fixture
def scaffolded() -> Iterator[tuple[str, Path]]:
    """A new instance scaffolded into the project's defs/ (removed afterwards): its name and folder."""
    with scaffolded_instance(TYPE, "rest_apis", "orders") as instance:
        yield instance


def test_dg_lists_the_rest_api_source_type():
    listed = dg_command("list", "components", "--json")
    assert listed.returncode == 0, listed.stderr
    assert TYPE in {item["key"] for item in json.loads(listed.stdout)["items"]}


def test_a_scaffolded_rest_api_lands_the_mock_api_with_no_edit(scaffolded, start_mock_api, tmp_path, monkeypatch):
    name, folder = scaffolded
    text = (folder / "defs.yaml").read_text()
    assert f"name: {name}" in text and "# params:" in text, "commented defaults"
    checked = dg_command("check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    api = start_mock_api(records=2500)
    for variable, value in {
        "SOURCE_API_URL": api.url,
        "SOURCE_API_TOKEN": api.token,
        "DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "INGEST_DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(variable, value)
    instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(tmp_path / "dagster")))
    from ingestion_patterns.definitions import defs

    definitions = defs()
    job = definitions.resolve_job_def(f"{name}_pull_job")
    assert job.tags["ingestion/source-kind"] == "rest_api" and job.tags["ingestion/source"] == name
    assert definitions.resolve_schedule_def(f"{name}_pull_schedule").cron_schedule == "0 0 * * *"

    first = job.execute_in_process(instance=instance)
    assert first.success
    columns = [column["name"] for column in yaml.safe_load(text)["attributes"]["columns"]]
    db = tmp_path / "warehouse.duckdb"
    assert final_rows(db, name, columns) == source_rows(api, columns)
    assert query(db, f"SELECT count(*) FROM ingestion.{name}_raw") == [(2500,)]
    # Its checkpoint is its own row; the shipped source API's tables are untouched.
    assert query(db, "SELECT source FROM ingestion.pull_state") == [(name,)]
    assert query(db, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'final_data'") == [(0,)]

    api.mutate(create=40, update=60)
    second = job.execute_in_process(instance=instance)
    assert second.success
    assert final_rows(db, name, columns) == source_rows(api, columns)
    landed = second.asset_materializations_for_node(f"{name}_extract")[0].metadata["record_count"].value
    assert landed == 100  # only what changed: the cursor is the instance's own
