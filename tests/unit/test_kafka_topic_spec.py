"""``KafkaTopicSpec``: a Kafka topic's declaration, read from defs.yaml files and the sources file,
with errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion_patterns.poll.source import (
    COMPONENT_TYPE,
    KafkaTopicSpec,
    SourceConfigError,
    load_kafka_topics,
    table_names,
)

COLUMNS = [{"name": "order_id", "type": "varchar", "required": True}, {"name": "total", "type": "double"}]


def _defs(folder: Path, name: str, attributes: str) -> Path:
    path = folder / name / "defs.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(f"type: {COMPONENT_TYPE}\nattributes:\n{attributes}")
    return path


def test_a_declaration_takes_its_folder_name_and_the_defaults(tmp_path):
    _defs(tmp_path, "orders", "  topic: orders.v1\n  columns:\n    - {name: order_id, type: varchar, required: true}\n")
    (spec,) = load_kafka_topics(tmp_path).values()
    assert (spec.name, spec.topic, spec.value_format, spec.keep_key, spec.dead_letter_topic) == (
        "orders",
        "orders.v1",
        "json",
        True,
        None,
    )
    assert table_names(spec) == ("orders", "orders_rejects")
    assert spec.columns[0].source_path == "order_id"


def test_every_field_has_a_description():
    from ingestion_patterns.poll.source import ContractColumn, KafkaTopicNames, RowCheck

    for model in (KafkaTopicSpec, ContractColumn, RowCheck, KafkaTopicNames):
        for name, field in model.model_fields.items():
            assert field.description, name


def test_a_bad_field_is_named_with_its_file(tmp_path):
    path = _defs(tmp_path, "orders", "  topic: orders\n  columns:\n    - {name: total, type: money}\n")
    with pytest.raises(SourceConfigError, match=rf"{path}.*columns\.0\.type"):
        load_kafka_topics(tmp_path)


@pytest.mark.parametrize(
    "fields, problem",
    [
        ({"columns": []}, "columns"),
        ({"columns": [{"name": "offset", "type": "bigint"}]}, "keeps for the message"),
        ({"columns": [*COLUMNS, {"name": "total", "type": "bigint"}]}, "total declared twice"),
        ({"columns": [{"name": "x", "type": "double", "path": "a..b"}]}, "not dotted keys"),
        ({"columns": COLUMNS, "topic": "bad topic"}, "not a Kafka topic name"),
        ({"columns": COLUMNS, "checks": [{"sql": "1; DROP TABLE x"}]}, "without ';'"),
        ({"columns": COLUMNS, "registry_url_env": "not-a-name"}, "not an environment variable"),
        ({"columns": COLUMNS, "name": "Orders"}, "lower-case"),
        ({"columns": COLUMNS, "unknown": 1}, "unknown"),
    ],
)
def test_invalid_declarations_say_why(fields, problem):
    with pytest.raises(ValueError, match=problem):
        KafkaTopicSpec.model_validate({"name": "orders", "topic": "orders", **fields})


def test_the_sources_file_adds_topics_and_a_repeat_names_both_places(tmp_path):
    _defs(tmp_path / "defs", "orders", "  topic: orders\n  columns: [{name: id, type: bigint}]\n")
    sources = tmp_path / "sources.yaml"
    sources.write_text("kafka_topics:\n  - {name: refunds, topic: refunds, columns: [{name: id, type: bigint}]}\n")
    assert sorted(load_kafka_topics(tmp_path / "defs", str(sources))) == ["orders", "refunds"]
    sources.write_text("kafka_topics:\n  - {name: again, topic: orders, columns: [{name: id, type: bigint}]}\n")
    with pytest.raises(
        SourceConfigError, match=r"kafka_topics\[0\]: topic 'orders' is declared twice \(first in .*orders"
    ):
        load_kafka_topics(tmp_path / "defs", str(sources))
    sources.write_text("kafka_topics:\n  - {topic: other, columns: [{name: id, type: bigint}]}\n")
    with pytest.raises(SourceConfigError, match="give the instance a name"):
        load_kafka_topics(None, str(sources))


def test_an_avro_topic_reads_its_registry_from_the_named_variable():
    spec = KafkaTopicSpec(name="payments", topic="payments", value_format="avro", columns=COLUMNS)
    assert spec.registry_url({"SCHEMA_REGISTRY_URL": "http://r/apis/ccompat/v7"}) == "http://r/apis/ccompat/v7"
    with pytest.raises(SourceConfigError, match="SCHEMA_REGISTRY_URL is not set"):
        spec.registry_url({})
