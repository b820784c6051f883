"""REST API sources declared in the sources file (the chart's ConfigMap, ``rest_apis:``) build the same
instances as their ``defs.yaml`` would; a bad entry or a name declared twice is refused naming where."""

from __future__ import annotations

import pytest
import yaml

from ingestion_patterns.declarations import SourceConfigError
from ingestion_patterns.definitions import build_definitions
from ingestion_patterns.pull.source import RestApiSourceSpec
from ingestion_patterns.settings import load_settings

ORDERS = {
    "name": "orders",
    "base_url": "https://api.example.com",
    "path": "/v2/orders",
    "auth": {"type": "bearer", "token_env": "ORDERS_TOKEN"},
    "paginator": {"type": "next_url", "next_url_path": "links.next"},
    "records": {"format": "json", "path": "data"},
    "incremental": {"cursor_field": "modified", "param": "modified_since"},
    "primary_key": "order_id",
    "columns": [
        {"name": "order_id", "type": "varchar", "required": True},
        {"name": "total", "type": "double"},
        {"name": "modified", "type": "timestamptz"},
    ],
    "schedule": "*/15 * * * *",
}


def _build(tmp_path, rest_apis: list) -> object:
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"rest_apis": rest_apis}))
    return build_definitions(load_settings({"INGEST_SOURCES_FILE": str(sources)}))


def test_a_rest_api_in_the_sources_file_gets_its_own_assets_job_and_schedule(tmp_path):
    definitions = _build(tmp_path, [ORDERS])
    job = definitions.resolve_job_def("orders_pull_job")
    assert job.tags["ingestion/source-kind"] == "rest_api" and job.tags["ingestion/source"] == "orders"
    assert definitions.resolve_schedule_def("orders_pull_schedule").cron_schedule == "*/15 * * * *"
    extract = definitions.resolve_assets_def("orders_extract")
    assert extract.metadata_by_key[extract.key]["dagster/table_name"] == "ingestion.orders_raw"
    # The shipped instances are still there beside it.
    assert definitions.resolve_job_def("items_pull_job") and definitions.resolve_job_def("pull_job")


def test_a_name_declared_twice_or_a_bad_entry_is_refused_naming_where(tmp_path):
    with pytest.raises(
        SourceConfigError, match=r"rest_apis\[0\]: REST API source 'items' is declared twice .*defs.yaml"
    ):
        _build(tmp_path, [{**ORDERS, "name": "items"}])
    with pytest.raises(SourceConfigError, match=r"rest_apis\[1\]: REST API source 'orders' is declared twice"):
        _build(tmp_path, [ORDERS, ORDERS])
    with pytest.raises(SourceConfigError, match=r"rest_apis\[0\].*carries credentials"):
        _build(tmp_path, [{**ORDERS, "headers": {"Authorization": "Bearer s3cret"}}])


def test_a_contract_must_name_its_key_and_cursor_among_its_columns():
    with pytest.raises(ValueError, match="primary_key 'id' is not one of the columns"):
        RestApiSourceSpec.model_validate({**ORDERS, "primary_key": "id"})
    with pytest.raises(ValueError, match="needs primary_key and incremental.cursor_field"):
        RestApiSourceSpec.model_validate({**ORDERS, "incremental": None})
    with pytest.raises(ValueError, match="declared more than once"):
        RestApiSourceSpec.model_validate(
            {**ORDERS, "columns": [*ORDERS["columns"], {"name": "total", "type": "bigint"}]}
        )
    contract = RestApiSourceSpec.model_validate(ORDERS).contract
    assert (contract.key, contract.cursor) == ("order_id", "modified")
    assert set(contract.required) == {"order_id", "modified"}  # the key and cursor are always required


def test_the_shipped_source_api_declaration_is_the_reference_pull_s_tables_and_contract():
    # The landing's SOURCE_API (its default, used by retention and the benchmarks) and the shipped
    # defs.yaml must describe the same tables, pull_state row and contract.
    from ingestion_patterns.declarations import package_defs_folder
    from ingestion_patterns.pull import landing

    path = package_defs_folder() / "rest_apis" / "source_api" / "defs.yaml"
    attributes = {**yaml.safe_load(path.read_text())["attributes"], "base_url": "http://127.0.0.1:8000"}
    assert RestApiSourceSpec.model_validate(attributes).tables == landing.SOURCE_API
