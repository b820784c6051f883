"""A declared topic's contract and tables: what ``landing`` and ``validate`` need from a ``KafkaTopicSpec``.

``TopicContract.of(spec)`` gives the events table's columns (the topic, partition and offset, then the
declared columns, then the message's key, headers and timestamp as declared kept), the rejects table
(the same for every topic: the raw message and the reason), the DDL with its additive migration, and
the Arrow types an Avro value is decoded into. The events table follows its declaration additively
(``warehouse.evolve_table``). Offsets and poll plans are shared tables keyed by topic.
No Dagster here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from .. import warehouse
from ..warehouse import ARROW_TYPES, SQL_TYPES, Column
from .source import ContractColumn, KafkaTopicSpec, RowCheck, table_names

HEADERS_TYPE = 'STRUCT("key" VARCHAR, "value" BLOB)[]'
OFFSETS_TABLE = "kafka_offsets"
PLAN_TABLE = "kafka_poll_plan"
REJECTS_COLUMNS = (
    Column("topic", "VARCHAR", not_null=True),
    Column("partition", "INTEGER", not_null=True),
    Column("offset", "BIGINT", not_null=True),
    Column("message_key", "BLOB"),
    Column("raw_value", "BLOB"),
    Column("headers", HEADERS_TYPE),
    Column("reason", "VARCHAR", not_null=True),
    Column("message_timestamp", "TIMESTAMPTZ"),
    Column("rejected_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
    Column("run_id", "VARCHAR"),
)
OFFSETS_COLUMNS = (
    Column("topic", "VARCHAR", not_null=True),
    Column("partition", "INTEGER", not_null=True),
    Column("next_offset", "BIGINT", not_null=True),
    Column("updated_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
)
PLAN_COLUMNS = (
    Column("topic", "VARCHAR", not_null=True),
    Column("partition", "INTEGER", not_null=True),
    Column("from_offset", "BIGINT", not_null=True),  # the stored offset (or the log start) when the plan was made
    Column("to_offset", "BIGINT", not_null=True),  # land up to, not including, this offset
    Column("run_id", "VARCHAR"),
    Column("planned_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
)
_KEY = ("topic", "partition", "offset")


@dataclass(frozen=True)
class TopicContract:
    """A topic's declared columns and checks, and the tables they land in."""

    name: str
    events_table: str
    rejects_table: str
    columns: tuple[ContractColumn, ...]
    checks: tuple[RowCheck, ...] = ()
    keep_key: bool = True
    keep_headers: bool = True
    value_format: str = "json"

    @classmethod
    def of(cls, spec: KafkaTopicSpec) -> TopicContract:
        events, rejects = table_names(spec)
        return cls(
            name=spec.name,
            events_table=events,
            rejects_table=rejects,
            columns=tuple(spec.columns),
            checks=tuple(spec.checks),
            keep_key=spec.keep_key,
            keep_headers=spec.keep_headers,
            value_format=spec.value_format,
        )

    @property
    def declared_columns(self) -> tuple[Column, ...]:
        """The contract's columns as table columns (a required one NOT NULL)."""
        return tuple(Column(c.name, SQL_TYPES[c.type], not_null=c.required) for c in self.columns)

    @property
    def message_columns(self) -> tuple[str, ...]:
        """The message's own fields kept in the events table, besides topic, partition and offset."""
        return (
            *(("message_key",) if self.keep_key else ()),
            *(("headers",) if self.keep_headers else ()),
            "message_timestamp",
        )

    @property
    def events_columns(self) -> tuple[Column, ...]:
        kept = {
            "message_key": Column("message_key", "BLOB"),
            "headers": Column("headers", HEADERS_TYPE),
            "message_timestamp": Column("message_timestamp", "TIMESTAMPTZ"),
        }
        return (
            Column("topic", "VARCHAR", not_null=True),
            Column("partition", "INTEGER", not_null=True),
            Column("offset", "BIGINT", not_null=True),
            *self.declared_columns,
            *(kept[name] for name in self.message_columns),
            Column("landed_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
            Column("run_id", "VARCHAR"),
        )

    @property
    def ddl(self) -> list[warehouse.DDLStep]:
        """The tables this topic writes, created when absent and migrated additively when there."""
        return [
            warehouse.create_table(self.events_table, self.events_columns, _KEY),
            warehouse.evolve_table(self.events_table, self.events_columns),
            warehouse.create_table(self.rejects_table, REJECTS_COLUMNS, _KEY),
            warehouse.create_table(OFFSETS_TABLE, OFFSETS_COLUMNS, ("topic", "partition")),
            warehouse.create_table(PLAN_TABLE, PLAN_COLUMNS, ("topic", "partition")),
        ]

    @property
    def arrow_schema(self) -> pa.Schema:
        """The Arrow types of the declared columns (what an Avro batch is decoded into)."""
        return pa.schema([pa.field(c.name, ARROW_TYPES[c.type]) for c in self.columns])
