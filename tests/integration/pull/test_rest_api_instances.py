"""The shipped ``items`` RestApiSource (defs/rest_apis/items): the mock API's /v1/items, a JSON
envelope paged by Link headers with an API key, read by the declarative client into its own tables
exactly once, across changes and a kill -9 mid-run. (The reference source API's own kill test is
test_pull_resilience.py.)"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dg_project import kill_job_midway
from pull_helpers import final_rows, materialization_metadata, query, source_rows

from ingestion_patterns.instance import prepare_dagster_home

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

API_KEY = "items-test-key"
COLUMNS = ("id", "name", "email", "amount", "status", "category", "version", "created_at", "updated_at")


def _env(api, db: Path) -> dict[str, str]:
    return {"SOURCE_API_URL": api.url, "SOURCE_API_KEY": API_KEY, "DUCKDB_PATH": str(db)}


def _items_declaration(api, limit: int, columns: list[dict], **fields) -> dict:
    """A sources-file declaration of the mock API's /v1/items (envelope, Link pages, API key)."""
    return {
        "base_url": api.url,
        "path": "/v1/items",
        "params": {"limit": limit},
        "auth": {"type": "api_key", "name": "X-API-Key", "location": "header", "value_env": "SOURCE_API_KEY"},
        "paginator": {"type": "link_header"},
        "records": {"format": "json", "path": "items"},
        "primary_key": "id",
        "columns": columns,
        **fields,
    }


def _items_job(monkeypatch, api, tmp_path: Path) -> tuple[dg.JobDefinition, dg.DagsterInstance]:
    for name, value in {**_env(api, tmp_path / "warehouse.duckdb"), "INGEST_DATA_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    from ingestion_patterns.definitions import defs

    instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(tmp_path / "dagster")))
    return defs().resolve_job_def("items_pull_job"), instance


def test_the_items_example_lands_its_resource_and_then_only_what_changed(start_mock_api, tmp_path, monkeypatch):
    api = start_mock_api(records=12_000, api_key=API_KEY)
    job, instance = _items_job(monkeypatch, api, tmp_path)
    db = tmp_path / "warehouse.duckdb"

    first = job.execute_in_process(instance=instance)
    assert first.success
    assert materialization_metadata(first, "items_extract")["pages"] == 3  # limit 5000: Link headers followed
    assert final_rows(db, "items", COLUMNS) == source_rows(api, COLUMNS)
    assert query(db, "SELECT source FROM ingestion.pull_state") == [("items",)]

    api.mutate(create=25, update=75)
    second = job.execute_in_process(instance=instance)
    assert second.success
    assert materialization_metadata(second, "items_extract")["record_count"] == 100
    load = materialization_metadata(second, "items_load")
    assert (load["inserted"], load["updated"]) == (25, 75)
    assert final_rows(db, "items", COLUMNS) == source_rows(api, COLUMNS)


def test_a_wrong_api_key_fails_at_once_and_lands_nothing(start_mock_api, tmp_path, monkeypatch):
    api = start_mock_api(records=100, api_key="the-right-one")
    job, instance = _items_job(monkeypatch, api, tmp_path)
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert "401" in failure.step_failure_data.error.message
    assert "SOURCE_API_KEY" in failure.step_failure_data.error.message  # says what to fix
    assert query(tmp_path / "warehouse.duckdb", "SELECT count(*) FROM ingestion.items_raw") == [(0,)]


def test_items_killed_mid_run_then_rerun_lands_every_record_once(start_mock_api, tmp_path, monkeypatch):
    records = 30_000
    api = start_mock_api(records=records, api_key=API_KEY, latency_ms=1500)  # 6 pages of 5,000, >= 9 s
    db = tmp_path / "warehouse.duckdb"
    kill_job_midway("items_pull_job", env=_env(api, db), tmp_path=tmp_path, after="landed page 2:")

    [(pages, landed)] = query(db, "SELECT count(*), coalesce(sum(record_count), 0) FROM ingestion.items_pages")
    assert 2 <= pages < 6, f"not killed midway: {pages} pages landed"
    # The cursor is exactly the newest row landed: page and cursor committed together.
    newest = query(db, "SELECT updated_at, id FROM ingestion.items_raw ORDER BY updated_at DESC, id DESC LIMIT 1")
    assert query(db, "SELECT cursor_value::TIMESTAMPTZ, cursor_key::BIGINT FROM ingestion.pull_state") == newest
    assert query(db, "SELECT count(*) FROM ingestion.items") == [(0,)]

    rerun, instance = _items_job(monkeypatch, api, tmp_path)
    result = rerun.execute_in_process(instance=instance)
    assert result.success
    assert materialization_metadata(result, "items_extract")["record_count"] == records - landed
    assert materialization_metadata(result, "items_load")["inserted"] == records
    assert query(db, "SELECT count(*), count(DISTINCT (id, updated_at)) FROM ingestion.items_raw") == [
        (records, records)
    ]
    assert final_rows(db, "items", COLUMNS) == source_rows(api, COLUMNS)


def test_unknown_columns_keep_lands_the_other_fields_as_json_and_drop_does_not(start_mock_api, tmp_path, monkeypatch):
    import json

    import yaml

    from ingestion_patterns.definitions import build_definitions
    from ingestion_patterns.settings import load_settings

    api = start_mock_api(records=3_000, api_key=API_KEY)
    slim = _items_declaration(
        api,
        1000,
        [
            {"name": "id", "type": "bigint", "required": True},
            {"name": "amount", "type": "double"},
            {"name": "updated_at", "type": "timestamptz", "required": True},
        ],
        incremental={"cursor_field": "updated_at", "param": "updated_since"},
    )
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        yaml.safe_dump(
            {"rest_apis": [{**slim, "name": "kept", "unknown_columns": "keep"}, {**slim, "name": "dropped"}]}
        )
    )
    db = tmp_path / "warehouse.duckdb"
    env = {**_env(api, db), "INGEST_DATA_DIR": str(tmp_path), "INGEST_SOURCES_FILE": str(sources)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    definitions = build_definitions(load_settings())
    instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(tmp_path / "dagster")))
    for job in ("kept_pull_job", "dropped_pull_job"):
        assert definitions.resolve_job_def(job).execute_in_process(instance=instance).success

    others = ("name", "email", "status", "category", "version", "created_at")
    expected = {row[0]: dict(zip(others, row[1:], strict=True)) for row in source_rows(api, ("id", *others))}
    kept = query(db, "SELECT id, unknown_fields FROM ingestion.kept")
    assert len(kept) == 3_000
    for record_id, fields in kept:
        landed = json.loads(fields)
        assert set(landed) == set(others), landed
        assert landed["name"] == expected[record_id]["name"] and landed["version"] == expected[record_id]["version"]
    columns = [name for (name,) in query(db, "SELECT column_name FROM (DESCRIBE ingestion.dropped)")]
    assert "unknown_fields" not in columns and "name" not in columns
    assert query(db, "SELECT count(*) FROM ingestion.dropped") == [(3_000,)]


def test_a_full_read_source_killed_mid_run_then_rerun_holds_exactly_the_source(start_mock_api, tmp_path, monkeypatch):
    import yaml

    from ingestion_patterns.definitions import build_definitions
    from ingestion_patterns.settings import load_settings

    records = 30_000
    api = start_mock_api(records=records, api_key=API_KEY, latency_ms=1500)  # 6 pages of 5,000, >= 9 s
    catalog = _items_declaration(
        api,
        5000,
        [
            {"name": "id", "type": "bigint", "required": True},
            *({"name": c, "type": "varchar"} for c in ("name", "email", "status", "category")),
            {"name": "amount", "type": "double"},
            {"name": "version", "type": "bigint"},
            *({"name": c, "type": "timestamptz"} for c in ("created_at", "updated_at")),
        ],
        name="catalog",
        write="replace",  # no incremental field: every run reads it whole
    )
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"rest_apis": [catalog]}))
    db = tmp_path / "warehouse.duckdb"
    env = {**_env(api, db), "INGEST_DATA_DIR": str(tmp_path), "INGEST_SOURCES_FILE": str(sources)}
    kill_job_midway("catalog_pull_job", env=env, tmp_path=tmp_path, after="landed page 2:")
    [(pages,)] = query(db, "SELECT count(*) FROM ingestion.catalog_pages")
    assert 2 <= pages < 6, f"not killed midway: {pages} pages landed"
    assert query(db, "SELECT count(*) FROM ingestion.catalog") == [(0,)]

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    job = build_definitions(load_settings()).resolve_job_def("catalog_pull_job")
    instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(tmp_path / "dagster")))
    api.mutate(create=10, update=20)  # what the next full read sees changed too
    for _ in range(2):  # the rerun, then one more: each leaves exactly the source
        result = job.execute_in_process(instance=instance)
        assert result.success
        assert materialization_metadata(result, "catalog_extract")["mode"] == "full read"
        assert materialization_metadata(result, "catalog_load")["final_rows"] == records + 10
        assert final_rows(db, "catalog", COLUMNS) == source_rows(api, COLUMNS)
