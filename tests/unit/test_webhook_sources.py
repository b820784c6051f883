"""Webhook source declarations (push/source.py): what a declaration may say, and the errors that name
the file and field when it says something else."""

from __future__ import annotations

import pytest

from ingestion_patterns.push.receiver.config import ConfigError, ReceiverConfig
from ingestion_patterns.push.source import (
    COMPONENT_TYPE,
    FieldFrom,
    SourceConfigError,
    load_webhook_sources,
    parse_declarations,
)


def test_a_declaration_takes_today_s_defaults():
    [spec] = parse_declarations([("here", {"source_id": "test-source"})]).values()
    assert (spec.signature, spec.secret_env, spec.required_fields, spec.batch_size) == (
        "none",
        None,
        ["timestamp", "data"],
        5000,
    )


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"source_id": "orders", "signature": "stripe"}, "needs secret_env"),
        ({"source_id": "orders", "signature": "paypal", "secret_env": "X"}, "signature"),
        ({"source_id": "has space"}, "source_id"),
        ({"source_id": "orders", "secret_env": "not-a-name"}, "secret_env"),
        ({"source_id": "orders", "event_id": {"header": "a", "json_path": "b"}}, "exactly one"),
        ({"source_id": "orders", "batch_size": 0}, "batch_size"),
        ({"source_id": "orders", "colour": "blue"}, "colour"),
    ],
)
def test_a_bad_declaration_is_refused_with_where_and_why(fields, named):
    with pytest.raises(SourceConfigError, match="sources.yaml webhooks\\[0\\]") as refused:
        parse_declarations([("sources.yaml webhooks[0]", fields)])
    assert named in str(refused.value)


def test_a_source_declared_twice_names_both_places(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "defs.yaml").write_text(f"type: {COMPONENT_TYPE}\nattributes:\n  source_id: orders\n")
    sources = tmp_path / "sources.yaml"
    sources.write_text("webhooks:\n  - source_id: orders\n")
    with pytest.raises(SourceConfigError, match="declared twice") as refused:
        load_webhook_sources(tmp_path, str(sources))
    assert "a/defs.yaml" in str(refused.value) and "sources.yaml webhooks[0]" in str(refused.value)


def test_defs_yaml_files_of_other_types_are_not_webhook_sources(tmp_path):
    (tmp_path / "defs.yaml").write_text("type: dagster.SomethingElse\nattributes: {source_id: x}\n")
    assert load_webhook_sources(tmp_path) == {}


def test_a_declared_scheme_without_its_secret_stops_the_receiver_naming_the_variable(tmp_path):
    sources = tmp_path / "sources.yaml"
    sources.write_text("webhooks:\n  - {source_id: orders, signature: github, secret_env: ORDERS_SECRET}\n")
    with pytest.raises(ConfigError, match="ORDERS_SECRET is not set"):
        ReceiverConfig.from_env({"INGEST_SOURCES_FILE": str(sources)})
    config = ReceiverConfig.from_env({"INGEST_SOURCES_FILE": str(sources), "ORDERS_SECRET": "s3cret"})
    assert (config.secret_for("orders"), config.scheme_for("orders"), config.is_known("orders")) == (
        "s3cret",
        "github",
        True,
    )
    assert config.is_known("anything-else"), "accepting undeclared sources is the local default"


def test_a_field_is_read_from_a_header_or_a_json_path():
    payload = {"meta": {"delivery": 42, "flag": True}, "id": "x"}
    assert FieldFrom(json_path="meta.delivery").read({}, payload) == "42"
    assert FieldFrom(json_path="meta.flag").read({}, payload) is None  # not an id
    assert FieldFrom(json_path="meta.absent").read({}, payload) is None
    assert FieldFrom(header="X-Id").read({"X-Id": " abc "}, payload) == "abc"


def test_the_sources_file_builds_the_same_instances_as_defs_yaml_files(tmp_path):
    from ingestion_patterns.definitions import build_definitions
    from ingestion_patterns.settings import load_settings

    sources = tmp_path / "sources.yaml"
    sources.write_text("webhooks:\n  - {source_id: crm-eu, batch_size: 10}\n")
    definitions = build_definitions(load_settings({"INGEST_SOURCES_FILE": str(sources)}))
    job = definitions.resolve_job_def("crm_eu_webhook_job")
    assert job.tags["ingestion/source"] == "crm-eu"
    assert {j.name for j in definitions.resolve_sensor_def("webhook_pending_sensor").jobs} == {
        "crm_eu_webhook_job",
        "webhook_ingestion_job",
    }

    sources.write_text("webhooks:\n  - {source_id: test-source}\n")
    with pytest.raises(SourceConfigError, match="declared twice"):
        build_definitions(load_settings({"INGEST_SOURCES_FILE": str(sources)}))
