"""A REST API source, declared: ``RestApiSourceSpec``, the REST client's declaration (``rest_api.spec``)
plus what the pull pattern needs to land it: the contract (columns and types), the key, how it is
written, the schedule, and the names. Plain pydantic, no Dagster (docs/architecture.md, "Declared
sources"); the ``RestApiSource`` component wraps it.

An instance lands in its own tables, named from it: ``ingestion.<name>_raw`` (every page as it
came), ``ingestion.<name>`` (the contract's columns; one row per key with ``write: merge``),
``ingestion.<name>_rejects`` and ``ingestion.<name>_pages``, with its cursor in ``pull_state`` under
its name. The shipped reference instance keeps the names the reference example pins (``names:``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import declarations
from ..declarations import SourceConfigError
from ..warehouse import ARROW_TYPES, ColumnType
from .landing import PullTables
from .rest_api.spec import RestApiSpec
from .validate import UNKNOWN_COLUMN, Contract

# The `type:` of a defs.yaml that declares a REST API source.
COMPONENT_TYPE = "ingestion_patterns.components.RestApiSource"
# A name becomes table and asset names: a SQL and Dagster identifier.
NAME = declarations.TABLE_NAME


class ColumnSpec(BaseModel):
    """One column of the contract: a record field (top level) and the type it lands as."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The record's field, and the column's name.")
    type: ColumnType = Field(description="bigint | double | varchar | boolean | timestamptz (from ISO 8601 text).")
    required: bool = Field(
        default=False, description="A null or missing value blocks the load (the asset check fails with an ERROR)."
    )


class PullNames(BaseModel):
    """Names that replace the ones made from the instance's name; the shipped reference instance
    keeps the names the reference example pins with them, and nothing else should need them."""

    model_config = ConfigDict(extra="forbid")

    extract_asset: str | None = Field(default=None, description="Default <name>_extract.")
    check: str | None = Field(default=None, description="Default <name>_contract.")
    load_asset: str | None = Field(default=None, description="Default <name>_load.")
    job: str | None = Field(default=None, description="Default <name>_pull_job.")
    schedule: str | None = Field(default=None, description="Default <name>_pull_schedule.")
    final_table: str | None = Field(default=None, description="Default <name>.")
    raw_table: str | None = Field(default=None, description="Default <name>_raw.")
    rejects_table: str | None = Field(default=None, description="Default <name>_rejects.")
    pages_table: str | None = Field(default=None, description="Default <name>_pages.")


class RestApiSourceSpec(RestApiSpec):
    """A REST API read on a schedule, checked against its contract and landed in its own tables."""

    model_config = ConfigDict(extra="forbid", frozen=False)

    name: str = Field(description="The instance's name: its tables (ingestion.<name>, …), assets and job.")
    columns: list[ColumnSpec] = Field(min_length=1, description="The contract: the fields landed, with their types.")
    primary_key: str | None = Field(
        default=None,
        description="The field that identifies a record (a column); needed by merge and append, optional with "
        "replace (then one row per key).",
    )
    write: Literal["merge", "append", "replace"] = Field(
        default="merge",
        description="merge: one row per primary key, the latest incremental cursor value wins; append: every "
        "record as fetched; replace: each run reads the whole source (no incremental) and the final table "
        "becomes what it read.",
    )
    unknown_columns: Literal["drop", "keep"] = Field(
        default="drop",
        description="Fields outside the contract are reported either way; drop: not landed; keep: landed in the "
        "JSON column unknown_fields (one object per record).",
    )
    schedule: str = Field(default="0 0 * * *", description="When the pull runs (cron, UTC).")
    names: PullNames = Field(default_factory=PullNames, description="Asset, check, job and schedule names.")

    @model_validator(mode="after")
    def _contract(self) -> RestApiSourceSpec:
        if not NAME.match(self.name):
            raise ValueError(f"name {self.name!r}: lower-case letters, digits and '_', starting with a letter")
        for field in ("final_table", "raw_table", "rejects_table", "pages_table"):
            table = getattr(self.names, field)
            if table is not None and not NAME.match(table):
                raise ValueError(f"names.{field} {table!r}: lower-case letters, digits and '_', starting with a letter")
        declared = [column.name for column in self.columns]
        if self.unknown_columns == "keep" and UNKNOWN_COLUMN in declared:
            raise ValueError(f"columns: {UNKNOWN_COLUMN!r} is where unknown_columns: keep lands the other fields")
        if repeated := sorted({name for name in declared if declared.count(name) > 1}):
            raise ValueError(f"columns: {', '.join(repeated)} declared more than once")
        if self.primary_key is not None and self.primary_key not in declared:
            raise ValueError(f"primary_key {self.primary_key!r} is not one of the columns")
        cursor = self.incremental.cursor_field if self.incremental else None
        if cursor is not None and cursor not in declared:
            raise ValueError(f"incremental.cursor_field {cursor!r} is not one of the columns")
        if self.write == "replace":
            # Each run reads everything and the load swaps the final table for it: nothing to resume from.
            if self.incremental is not None:
                raise ValueError("write: replace reads the whole source each run: leave out incremental")
        elif self.primary_key is None or cursor is None:
            # The extract resumes after the largest (cursor, key) it landed, and merge keeps each key's
            # newest version: without both, a rerun after a crash would land records twice.
            raise ValueError(
                f"write: {self.write} needs primary_key and incremental.cursor_field (the field whose larger "
                "value is the newer version): the pull resumes after the newest (cursor, key) it landed, "
                "so a rerun never lands a record twice; a source without them is read whole: write: replace"
            )
        return self

    @property
    def contract(self) -> Contract:
        cursor = self.incremental.cursor_field if self.incremental else None
        required = [column.name for column in self.columns if column.required]
        required += [name for name in (self.primary_key, cursor) if name and name not in required]
        schema = pa.schema([(column.name, ARROW_TYPES[column.type]) for column in self.columns])
        return Contract(schema, tuple(required), key=self.primary_key, cursor=cursor)

    @property
    def tables(self) -> PullTables:
        default = PullTables.for_instance(self.name, self.contract, self.write)
        names = self.names
        return PullTables(
            self.name,  # its pull_state row
            raw=names.raw_table or default.raw,
            final=names.final_table or default.final,
            rejects=names.rejects_table or default.rejects,
            pages=names.pages_table or default.pages,
            contract=default.contract,
            write=self.write,
            keep_unknown=self.unknown_columns == "keep",
        )


def rest_apis_in_file(defs_folder: Path, sources_file: Path) -> list[RestApiSourceSpec]:
    """The ``rest_apis:`` of a sources file (the chart's ConfigMap), validated; a name also declared
    by a ``defs.yaml`` under ``defs_folder`` (whose fields may hold Dagster templates, so only its name
    is read here) or twice in the file is a ``SourceConfigError`` naming both places."""
    in_defs = {
        fields.get("name") or folder.name: where
        for where, fields, folder in declarations.declarations_in_defs(defs_folder, COMPONENT_TYPE)
    }
    found = declarations.by_key(
        (
            (where, declarations.validated(RestApiSourceSpec, where, fields))
            for where, fields in declarations.declarations_in_file(sources_file, "rest_apis")
        ),
        lambda spec: spec.name,
        "REST API source",
    )
    for name, (where, _) in found.items():
        if name in in_defs:
            raise SourceConfigError(f"{where}: REST API source {name!r} is declared twice (first in {in_defs[name]})")
    return [spec for _, spec in found.values()]
