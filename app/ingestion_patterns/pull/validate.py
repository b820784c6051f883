"""The pull pattern's contract and its checks: pure Arrow and Python, no I/O.

``conform`` reads a page into the contract's columns and types and says how the source drifted;
``drop_seen`` drops what an earlier run already landed; ``assess_extract`` turns the summary of the
rows waiting to be loaded into the asset check's errors and warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

_TS = pa.timestamp("us", tz="UTC")
# The source's contract: what raw_extract and final_data hold, and what the check verifies.
CONTRACT = pa.schema([
    ("id", pa.int64()),
    ("name", pa.string()),
    ("email", pa.string()),
    ("amount", pa.float64()),
    ("status", pa.string()),
    ("category", pa.string()),
    ("version", pa.int64()),
    ("created_at", _TS),
    ("updated_at", _TS),
])
REQUIRED = ("id", "name", "email", "amount", "status", "created_at", "updated_at")


@dataclass(frozen=True)
class PullCursor:
    """The keyset position of the newest record landed: pull everything after it."""

    updated_at: datetime | None = None
    id: int | None = None

    @property
    def is_start(self) -> bool:
        return self.updated_at is None

    def describe(self) -> str:
        return "start" if self.is_start else f"{self.updated_at.isoformat()} / id {self.id}"



def conform(table: pa.Table) -> tuple[pa.Table, list[str]]:
    """The page in the contract's columns and types, plus how the source drifted from it.

    A column that is missing or cannot be read as its contract type becomes all-null and gets an
    issue; the check turns issues into an ERROR. New extra columns are noted, not failures (an
    additive change does not break anyone)."""
    issues: list[str] = []
    columns = []
    for field in CONTRACT:
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
    extra = [name for name in table.column_names if name not in CONTRACT.names]
    if extra and issues:
        issues.append("unexpected columns: " + ", ".join(extra))
    return pa.Table.from_arrays(columns, schema=CONTRACT), issues


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """Lossless readings a JSON source legitimately produces (1 for 1.0, ISO strings for times)."""
    if pa.types.is_floating(target):
        return pa.types.is_integer(source)
    if pa.types.is_timestamp(target):
        return pa.types.is_string(source) or pa.types.is_timestamp(source)
    return False


def drop_seen(table: pa.Table, cursor: PullCursor) -> pa.Table:
    """Rows strictly after ``cursor`` in (updated_at, id) order; the API's ``updated_since`` is
    inclusive, so the rows at the cursor's own timestamp come again on resume. Rows whose key is
    null are kept so the check can report them."""
    if cursor.is_start or table.num_rows == 0:
        return table
    ts = pa.scalar(cursor.updated_at, _TS)
    updated, ids = table.column("updated_at"), table.column("id")
    after = pc.or_(pc.greater(updated, ts), pc.and_(pc.equal(updated, ts), pc.greater(ids, cursor.id)))
    return table.filter(pc.fill_null(after, True))


def page_max_key(table: pa.Table) -> tuple[datetime, int] | None:
    """The largest (updated_at, id) in the page, or None when it has no complete key."""
    keyed = table.filter(pc.and_(pc.is_valid(table.column("updated_at")), pc.is_valid(table.column("id"))))
    if keyed.num_rows == 0:
        return None
    newest = pc.max(keyed.column("updated_at"))
    ids_at_newest = keyed.filter(pc.equal(keyed.column("updated_at"), newest)).column("id")
    return newest.as_py(), pc.max(ids_at_newest).as_py()


def assess_extract(summary: dict, *, now: datetime, max_age: timedelta) -> tuple[list[str], list[str]]:
    """(errors, warnings) about the rows waiting to be loaded. Errors break the contract and block
    the load; staleness only warns (a quiet source is not a broken one)."""
    errors = [f"schema: {issue}" for issue in summary["schema_issues"]]
    errors += [f"{count} null value(s) in required column '{column}'" for column, count in summary["nulls"].items()]
    if summary["duplicate_versions"]:
        errors.append(f"{summary['duplicate_versions']} duplicate record(s): same id and updated_at more than once")
    warnings = []
    newest = summary["newest_updated_at"]
    if newest is not None and now - newest > max_age:
        warnings.append(f"stale: newest updated_at {newest.isoformat()} is older than {max_age}")
    return errors, warnings
