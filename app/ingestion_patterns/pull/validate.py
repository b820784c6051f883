"""The pull pattern's contract and its checks: pure Arrow and Python, no I/O.

``records_table`` reads the records of a page that failed the fast path one by one (interchange
JSON objects, see ``client.read_ndjson``), and turns a record whose field the contract's column
cannot hold beside the others into a reject; ``conform`` reads a page into the contract's columns
and types and says how the source drifted; ``drop_seen`` drops what an earlier run already landed;
``assess_extract`` turns the summary of the rows waiting to be loaded into the asset check's errors
and warnings.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

_TS = pa.timestamp("us", tz="UTC")
# The source's contract: what raw_extract and final_data hold, and what the check verifies.
CONTRACT = pa.schema(
    [
        ("id", pa.int64()),
        ("name", pa.string()),
        ("email", pa.string()),
        ("amount", pa.float64()),
        ("status", pa.string()),
        ("category", pa.string()),
        ("version", pa.int64()),
        ("created_at", _TS),
        ("updated_at", _TS),
    ]
)
REQUIRED = ("id", "name", "email", "amount", "status", "created_at", "updated_at")


@dataclass(frozen=True)
class Contract:
    """What a pulled source's tables hold: its columns and types, the ones the check requires, the
    record key (``merge`` keeps one row per key) and the cursor field (the latest version wins, and
    the extract resumes after the largest (cursor, key) landed)."""

    schema: pa.Schema
    required: tuple[str, ...] = ()
    key: str | None = None
    cursor: str | None = None


# Where a source that keeps unknown fields (``unknown_columns: keep``) lands them: one JSON object per
# row. Pages carry them as a struct of the columns pyarrow read, or, from the record-by-record path,
# as JSON text in UNKNOWN_TEXT (that path reads only the contract's fields with pyarrow).
UNKNOWN_COLUMN = "unknown_fields"
UNKNOWN_TEXT = "__unknown_fields_json"

# The shipped source API's (the reference example's ``source_api``).
SOURCE_API_CONTRACT = Contract(CONTRACT, REQUIRED, key="id", cursor="updated_at")


@dataclass(frozen=True)
class RecordReject:
    """A record of a page that cannot land: its raw line as the source sent it, and why."""

    raw: bytes
    reason: str


@dataclass(frozen=True)
class PullCursor:
    """The keyset position of the newest record landed, (cursor field, key) as their contract types
    hold them (for the source API: updated_at and id): pull everything after it."""

    value: Any = None
    key: Any = None

    @property
    def is_start(self) -> bool:
        return self.value is None

    def describe(self) -> str:
        if self.value is None:
            return "start"
        shown = self.value.isoformat() if isinstance(self.value, datetime) else str(self.value)
        return f"{shown} / key {self.key}"


def conform(
    table: pa.Table, contract: Contract = SOURCE_API_CONTRACT, *, keep_unknown: bool = False
) -> tuple[pa.Table, list[str]]:
    """The page in the contract's columns and types, plus how the source drifted from it; with
    ``keep_unknown``, also the fields outside the contract, in UNKNOWN_COLUMN.

    A column that is missing or cannot be read as its contract type becomes all-null and gets an
    issue; the check turns issues into an ERROR. New extra columns are noted, not failures (an
    additive change does not break anyone)."""
    issues: list[str] = []
    columns = []
    for field in contract.schema:
        if field.name not in table.column_names:
            issues.append(f"column '{field.name}' is missing")
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if column.type == field.type or pa.types.is_null(column.type):
            columns.append(column.cast(field.type))
            continue
        if _castable(column.type, field.type):
            try:
                columns.append(column.cast(field.type))
                continue
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        issues.append(f"column '{field.name}' has type {column.type}, expected {field.type}")
        columns.append(pa.nulls(table.num_rows, field.type))
    extra = unknown_columns(table, contract)
    if extra and issues:
        issues.append("unexpected columns: " + ", ".join(extra))
    conformed = pa.Table.from_arrays(columns, schema=contract.schema)
    if keep_unknown:
        conformed = conformed.append_column(UNKNOWN_COLUMN, _unknown_fields(table, extra))
    return conformed, issues


def _unknown_fields(table: pa.Table, extra: list[str]) -> pa.Array | pa.ChunkedArray:
    """The fields outside the contract, one value per row: JSON text (the record-by-record path), a
    struct of the columns (DuckDB writes it as JSON; a field a record lacks is null in it), or null."""
    if UNKNOWN_TEXT in table.column_names:
        return table.column(UNKNOWN_TEXT)
    if not extra or table.num_rows == 0:
        return pa.nulls(table.num_rows, pa.string())
    return pa.StructArray.from_arrays([table.column(name).combine_chunks() for name in extra], names=extra)


def unknown_columns(table: pa.Table, contract: Contract) -> list[str]:
    """The page's columns the contract does not declare (reported; an additive change breaks no one)."""
    return [name for name in table.column_names if name not in contract.schema.names and name != UNKNOWN_TEXT]


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


_INT64 = range(-(2**63), 2**63)
# What each contract type can hold, as parsed JSON (a timestamp comes as an ISO 8601 string).
_HOLDS: dict[pa.DataType, tuple[str, Callable[[Any], bool]]] = {
    pa.int64(): ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool) and v in _INT64),
    pa.float64(): ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    pa.string(): ("a string", lambda v: isinstance(v, str)),
    _TS: ("an ISO 8601 string", lambda v: isinstance(v, str)),
    pa.bool_(): ("a boolean", lambda v: isinstance(v, bool)),
}


def _misfit(record: dict, contract: Contract) -> str | None:
    """Why a field of ``record`` cannot be read into its contract column, or None."""
    for field in contract.schema:
        value = record.get(field.name)
        expected, holds = _HOLDS[field.type]
        if value is not None and not holds(value):
            return f"field '{field.name}' is a JSON {json_type(value)}, expected {expected}"
    return None


def _read_lines(lines: list[bytes]) -> pa.Table:
    if not lines:
        return pa.table({})
    return pa_json.read_json(io.BytesIO(b"\n".join(lines)), read_options=pa_json.ReadOptions(block_size=4 << 20))


def records_table(
    records: list[tuple[bytes, dict]], contract: Contract = SOURCE_API_CONTRACT
) -> tuple[pa.Table, list[RecordReject]]:
    """Parsed records (each an interchange JSON object, with its raw line) as a page table read the
    way the fast path reads a page (pyarrow's JSON reader, types inferred), plus the records that
    cannot be part of it.

    The contract's fields of each record are read (a duplicate key is gone by now: the last one won);
    other fields matter only by name (``conform`` notes them), so they come as null columns. When the
    reader cannot read the fields of all records together (one record's ``amount`` is a string, the
    others' numbers: the reader stops at the first that changes type), each record whose field is of
    a JSON type its contract column cannot hold becomes a reject with that reason, and the rest are
    read. A column of the wrong type in every record stays the contract break ``conform`` reports."""
    kept: list[tuple[bytes, bytes, dict, bytes | None]] = []  # (line to read, raw line, contract fields, others)
    rejects: list[RecordReject] = []
    extra: dict[str, None] = {}
    for raw, record in records:
        fields = {name: record[name] for name in contract.schema.names if name in record}
        others = {name: value for name, value in record.items() if name not in fields}
        try:
            line = orjson.dumps(fields)
        except orjson.JSONEncodeError:  # nested deeper than orjson writes: no contract type holds that
            rejects.append(
                RecordReject(raw, _misfit(fields, contract) or "a field is nested too deeply for the contract")
            )
            continue
        kept.append((line, raw, fields, _json_text(others) if others else None))
        extra.update((name, None) for name in others)
    try:
        table = _read_lines([line for line, _, _, _ in kept])
    except pa.ArrowInvalid:
        fitting = []
        for entry in kept:
            _, raw, fields, _ = entry
            reason = _misfit(fields, contract)
            if reason is None:
                fitting.append(entry)
            else:
                rejects.append(RecordReject(raw, reason))
        kept = fitting
        table = _read_lines([line for line, _, _, _ in kept])
    for name in extra:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows))
    if extra and table.num_rows:
        # The other fields' values, for a source that keeps them (``conform(keep_unknown=True)``).
        texts = [others.decode() if others is not None else None for _, _, _, others in kept]
        table = table.append_column(UNKNOWN_TEXT, pa.array(texts, pa.string()))
    return table, rejects


def _json_text(value: dict) -> bytes | None:
    """``value`` as JSON (the fields outside the contract, kept by ``unknown_columns: keep``); past
    orjson's nesting limit the standard library writes it, and past Python's, it is not kept."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        try:
            return json.dumps(value, separators=(",", ":")).encode()
        except (RecursionError, ValueError):
            return None


def has_non_finite(table: pa.Table) -> bool:
    """Whether any floating point value in ``table``, nested ones included, is NaN or infinite
    (pyarrow's JSON reader reads ``NaN`` and ``Infinity``, which are not JSON). Iterative: a column
    may be nested a thousand levels deep."""
    stack: list[pa.Array] = [chunk for column in table.columns if _holds_floats(column.type) for chunk in column.chunks]
    while stack:
        array = stack.pop()
        type_ = array.type
        if pa.types.is_floating(type_):
            if pc.any(pc.invert(pc.is_finite(array))).as_py() is True:
                return True
        elif pa.types.is_struct(type_):
            stack.extend(child for child in array.flatten() if _holds_floats(child.type))
        elif pa.types.is_list(type_) or pa.types.is_large_list(type_) or pa.types.is_fixed_size_list(type_):
            stack.append(array.flatten())
    return False


def _holds_floats(type_: pa.DataType) -> bool:
    stack = [type_]
    while stack:
        current = stack.pop()
        if pa.types.is_floating(current):
            return True
        stack.extend(current.field(i).type for i in range(current.num_fields))
    return False


def nesting_depth(type_: pa.DataType) -> int:
    """Levels of lists and structs in a column's type (a JSON array or object is one level each)."""
    deepest, stack = 0, [(type_, 0)]
    while stack:
        current, depth = stack.pop()
        if pa.types.is_struct(current) or current.num_fields:
            depth += 1
        deepest = max(deepest, depth)
        stack.extend((current.field(i).type, depth) for i in range(current.num_fields))
    return deepest


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """Lossless readings a JSON source legitimately produces (1 for 1.0, ISO strings for times)."""
    if pa.types.is_floating(target):
        return pa.types.is_integer(source)
    if pa.types.is_timestamp(target):
        return pa.types.is_string(source) or pa.types.is_timestamp(source)
    return False


def drop_seen(table: pa.Table, cursor: PullCursor, contract: Contract = SOURCE_API_CONTRACT) -> pa.Table:
    """Rows strictly after ``cursor`` in (cursor field, key) order; an API's ``updated_since`` is
    inclusive, so the rows at the cursor's own value come again on resume. Rows whose key is null
    are kept so the check can report them. A contract without a cursor field keeps every row."""
    if cursor.is_start or table.num_rows == 0 or contract.cursor is None or contract.key is None:
        return table
    field, key = contract.cursor, contract.key
    at = pa.scalar(cursor.value, contract.schema.field(field).type)
    values, keys = table.column(field), table.column(key)
    after = pc.or_(
        pc.greater(values, at),
        pc.and_(pc.equal(values, at), pc.greater(keys, pa.scalar(cursor.key, contract.schema.field(key).type))),
    )
    return table.filter(pc.fill_null(after, True))


def page_max_key(table: pa.Table, contract: Contract = SOURCE_API_CONTRACT) -> tuple[Any, Any] | None:
    """The largest (cursor field, key) in the page, or None when it has no complete one (or the
    contract has no cursor field)."""
    if contract.cursor is None or contract.key is None:
        return None
    field, key = contract.cursor, contract.key
    keyed = table.filter(pc.and_(pc.is_valid(table.column(field)), pc.is_valid(table.column(key))))
    if keyed.num_rows == 0:
        return None
    newest = pc.max(keyed.column(field))
    keys_at_newest = keyed.filter(pc.equal(keyed.column(field), newest)).column(key)
    return newest.as_py(), pc.max(keys_at_newest).as_py()


def assess_extract(summary: dict, *, now: datetime, max_age: timedelta) -> tuple[list[str], list[str]]:
    """(errors, warnings) about the rows waiting to be loaded. Errors break the contract and block
    the load; staleness only warns (a quiet source is not a broken one)."""
    errors = [f"schema: {issue}" for issue in summary["schema_issues"]]
    errors += [f"{count} null value(s) in required column '{column}'" for column, count in summary["nulls"].items()]
    if summary["duplicate_versions"]:
        errors.append(f"{summary['duplicate_versions']} duplicate record(s): same id and updated_at more than once")
    warnings = []
    if rejected := summary.get("rejects", 0):
        # Rejects never block the load: the records beside them are good, and each reject is kept.
        warnings.append(
            f"{rejected} record(s) rejected (not interchange JSON, or not readable into the "
            f"contract's columns), kept with their reasons in {summary.get('rejects_table', 'ingestion.pull_rejects')}"
        )
    newest = summary["newest_updated_at"]
    if isinstance(newest, datetime) and now - newest > max_age:  # a cursor that is a time
        warnings.append(f"stale: newest updated_at {newest.isoformat()} is older than {max_age}")
    return errors, warnings
