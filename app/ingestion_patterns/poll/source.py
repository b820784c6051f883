"""A Kafka topic, declared: ``KafkaTopicSpec``, and the declarations a deployment holds.

Plain pydantic, no Dagster (docs/architecture.md, "Declared sources"): a declaration comes from a
``defs.yaml`` whose ``type`` is the ``KafkaTopicSource`` component (its ``attributes``; the instance's
``name`` defaults to its folder's name), or from the ``kafka_topics:`` list of the file
``INGEST_SOURCES_FILE`` names (the chart's ConfigMap). The contract (``columns``, ``checks``) says what a
message must hold; ``contract.TopicContract`` turns it into the tables and the one validation pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import declarations
from ..declarations import SourceConfigError as SourceConfigError
from ..warehouse import ColumnType

# The `type:` of a defs.yaml that declares a Kafka topic.
COMPONENT_TYPE = "ingestion_patterns.components.KafkaTopicSource"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")  # a table name stem, and the stem of the Dagster names
COLUMN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
PATH = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")  # dotted keys into a JSON object or Avro record
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")  # Kafka's own rule for topic names
# Columns every events table has besides the contract's, so no contract column may take their names.
RESERVED_COLUMNS = frozenset(
    {
        "topic",
        "partition",
        "offset",
        "message_key",
        "message_value",
        "headers",
        "message_timestamp",
        "landed_at",
        "run_id",
        "reason",
    }
)
DEFAULT_REGISTRY_ENV = "SCHEMA_REGISTRY_URL"


class ContractColumn(BaseModel):
    """One column of the topic's table: its type, and where in a message's value it comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="The column's name in ingestion.<name> (lower case, digits, '_').")
    type: ColumnType = Field(
        description="bigint | double | varchar | boolean | timestamptz. A value of another JSON or Avro type is "
        "a reject with the reason; double and bigint must be finite numbers (NaN, Infinity, 1e999 are rejects); "
        "timestamptz is an ISO 8601 string in JSON, a timestamp-millis/-micros long in Avro."
    )
    path: str | None = Field(
        default=None,
        description="Where the value is: dotted keys into the JSON object (e.g. payer.id), or the Avro field "
        "(dots reach into nested records). Default: the column's name.",
    )
    required: bool = Field(
        default=False, description="A message without this value (absent or null) is a reject: 'missing field(s)'."
    )

    @model_validator(mode="after")
    def _checked(self) -> ContractColumn:
        if not COLUMN.match(self.name):
            raise ValueError(f"column name {self.name!r}: lower-case letters, digits and '_', starting with a letter")
        if self.name in RESERVED_COLUMNS:
            raise ValueError(f"column name {self.name!r} is one the table keeps for the message itself")
        if not PATH.match(self.source_path):
            raise ValueError(
                f"column {self.name!r}: path {self.source_path!r} is not dotted keys (letters, digits, _ -)"
            )
        return self

    @property
    def source_path(self) -> str:
        return self.path or self.name


class RowCheck(BaseModel):
    """A rule over a message's typed columns, as a SQL predicate: a message for which it is not true
    (false, or null) is a reject with ``reason``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sql: str = Field(description="A DuckDB SQL predicate over the contract's columns, e.g. amount >= 0.")
    reason: str = Field(default="", description="The reject's reason; default: 'check failed: <sql>'.")

    @model_validator(mode="after")
    def _checked(self) -> RowCheck:
        if not self.sql.strip() or ";" in self.sql:
            raise ValueError(f"check {self.sql!r}: one SQL predicate, without ';'")
        return self

    @property
    def message(self) -> str:
        return self.reason or f"check failed: {self.sql.strip()}"


class KafkaTopicNames(BaseModel):
    """Names that replace the ones made from the instance's name; the shipped ``transactions`` instance keeps
    the reference example's names with them, and nothing else should need them."""

    model_config = ConfigDict(extra="forbid")
    poll_asset: str | None = Field(default=None, description="The planning asset; default poll_<name>.")
    process_asset: str | None = Field(default=None, description="The landing asset; default land_<name>.")
    job: str | None = Field(default=None, description="The job; default <name>_kafka_job.")
    table: str | None = Field(default=None, description="The events table in ingestion; default <name>.")
    rejects_table: str | None = Field(default=None, description="The rejects table; default <name>_rejects.")


class KafkaTopicSpec(BaseModel):
    """One Kafka topic: where it is, what its messages must hold, and how it is landed."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        default="",
        description="The instance's name: its tables (ingestion.<name>, ingestion.<name>_rejects) and Dagster "
        "names come from it. Default: the defs.yaml folder's name.",
    )
    topic: str = Field(
        default="",
        description="The Kafka topic. Empty: the kafka resource's topic (KAFKA_TOPIC), as the shipped "
        "transactions instance does; at most one instance may leave it empty.",
    )
    consumer_group: str = Field(
        default="",
        description="The consumer group the landed offsets are copied to (visibility only: the truth is "
        "ingestion.kafka_offsets). Empty: KAFKA_GROUP_ID.",
    )
    max_records_per_poll: int = Field(default=1_000_000, ge=1, description="At most this many messages per run.")
    batch_rows: int = Field(default=200_000, ge=1, description="Messages per landing transaction.")
    value_format: Literal["json", "avro"] = Field(
        default="json",
        description="json: each value a JSON object. avro: the Confluent wire format (magic byte, schema id, "
        "Avro body), writer schemas from the schema registry.",
    )
    registry_url_env: str = Field(
        default=DEFAULT_REGISTRY_ENV,
        description="avro: the environment variable that holds the registry's Confluent-compatible URL "
        "(Apicurio: http://host:8080/apis/ccompat/v7).",
    )
    columns: list[ContractColumn] = Field(min_length=1, description="The contract: the columns a message lands in.")
    checks: list[RowCheck] = Field(
        default_factory=list, description="Row checks (SQL predicates over the columns); a failed one is a reject."
    )
    keep_key: bool = Field(default=True, description="Keep each message's key (column message_key).")
    keep_headers: bool = Field(default=True, description="Keep each message's headers (column headers).")
    dead_letter_topic: str | None = Field(
        default=None,
        description="Also produce each reject there (its value as received, the reason in the header "
        "ingestion.reject.reason), after the landing commits; ingestion.<name>_rejects stays the truth.",
    )
    names: KafkaTopicNames = Field(default_factory=KafkaTopicNames, description="Names, when not the defaults.")

    @model_validator(mode="after")
    def _checked(self) -> KafkaTopicSpec:
        if self.name and not NAME.match(self.name):
            raise ValueError(f"name {self.name!r}: lower-case letters, digits and '_', starting with a letter")
        for label, topic in (("topic", self.topic), ("dead_letter_topic", self.dead_letter_topic)):
            if topic and not TOPIC.match(topic):
                raise ValueError(f"{label} {topic!r} is not a Kafka topic name (letters, digits, '.', '_', '-')")
        if self.dead_letter_topic and self.dead_letter_topic == self.topic:
            raise ValueError("dead_letter_topic must not be the topic itself")
        if not ENV_NAME.match(self.registry_url_env):
            raise ValueError(f"registry_url_env {self.registry_url_env!r} is not an environment variable name")
        names = [column.name for column in self.columns]
        if repeated := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"columns: {', '.join(repeated)} declared twice")
        for label, table in (("names.table", self.names.table), ("names.rejects_table", self.names.rejects_table)):
            if table is not None and not COLUMN.match(table):
                raise ValueError(f"{label} {table!r} is not a table name")
        return self

    def named(self, name: str) -> KafkaTopicSpec:
        """This declaration with ``name`` when it gives none (a folder's name)."""
        return self if self.name else self.model_copy(update={"name": name})

    def registry_url(self, environ: Mapping[str, str] | None = None) -> str:
        """avro: the registry's URL, from ``registry_url_env`` now; unset is a ``SourceConfigError``."""
        env = os.environ if environ is None else environ
        url = env.get(self.registry_url_env, "")
        if not url:
            raise SourceConfigError(
                f"Kafka topic {self.name!r} is Avro: {self.registry_url_env} is not set (the schema registry's URL)"
            )
        return url


def folder_name(path: Path) -> str:
    """The default instance name of a ``defs.yaml`` in ``path``'s folder."""
    return path.parent.name.replace("-", "_").lower()


def declarations_in_defs(defs_folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(where, attributes)`` of every KafkaTopicSource ``defs.yaml`` under ``defs_folder`` (``name`` filled
    in from the folder)."""
    return [
        (where, {"name": folder_name(folder / "defs.yaml"), **attributes})
        for where, attributes, folder in declarations.declarations_in_defs(defs_folder, COMPONENT_TYPE)
    ]


def declarations_in_file(path: Path) -> list[tuple[str, Any]]:
    """``(where, fields)`` of each entry of the ``kafka_topics:`` list in a sources file (the chart's ConfigMap)."""
    return declarations.declarations_in_file(path, "kafka_topics")


def parse_spec(where: str, fields: Any) -> KafkaTopicSpec:
    """One declaration; a bad one is a ``SourceConfigError`` naming where and which field."""
    spec = declarations.validated(KafkaTopicSpec, where, fields)
    if not spec.name:
        raise SourceConfigError(f"{where}: name: give the instance a name (a sources-file entry has no folder)")
    return spec


def parse_declarations(found: Iterable[tuple[str, Any]]) -> dict[str, KafkaTopicSpec]:
    """The declared topics by instance name; a bad declaration, a repeated name or topic (or table) is a
    ``SourceConfigError`` naming both places."""
    topics: dict[str, KafkaTopicSpec] = {}
    seen: dict[tuple[str, str], str] = {}
    for where, fields in found:
        spec = parse_spec(where, fields)
        tables = table_names(spec)
        for key in (("name", spec.name), ("topic", spec.topic), ("table", tables[0]), ("table", tables[1])):
            if key in seen:
                what = "the resource's topic (KAFKA_TOPIC)" if key == ("topic", "") else f"{key[0]} {key[1]!r}"
                raise SourceConfigError(f"{where}: {what} is declared twice (first in {seen[key]})")
            seen[key] = where
        topics[spec.name] = spec
    return topics


def table_names(spec: KafkaTopicSpec) -> tuple[str, str]:
    """The events and rejects tables of an instance (in schema ingestion)."""
    return spec.names.table or spec.name, spec.names.rejects_table or f"{spec.name}_rejects"


def load_kafka_topics(defs_folder: Path | None, sources_file: str = "") -> dict[str, KafkaTopicSpec]:
    """Every declared topic: the ``defs.yaml`` files under ``defs_folder``, then ``sources_file``'s."""
    found = declarations_in_defs(defs_folder) if defs_folder is not None else []
    if sources_file:
        found += declarations_in_file(Path(sources_file))
    return parse_declarations(found)


def shipped_topic(name: str) -> KafkaTopicSpec:
    """A shipped instance's declaration, read from this package's ``defs/kafka_topics/<name>/defs.yaml``."""
    path = Path(__file__).resolve().parent.parent / "defs" / "kafka_topics" / name / "defs.yaml"
    found = declarations_in_defs(path.parent)
    if len(found) != 1:
        raise SourceConfigError(f"{path}: expected one KafkaTopicSource declaration, found {len(found)}")
    return parse_spec(*found[0])
