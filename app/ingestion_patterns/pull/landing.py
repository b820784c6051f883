"""Tables and landing of the pull pattern: pages from the source API, the cursor, the upsert.

* ``raw_extract`` is append-only: every page as it arrived, with its run id and page cursor.
* ``pull_pages`` logs each landed page (its cursor, size and any schema drift seen in it).
* ``pull_state`` holds the checkpoints: the extract cursor (updated_at, id) and the last page
  loaded into ``final_data``. Each moves in the same transaction as the rows it covers, so a crash
  at any point either keeps a page and its checkpoint or neither: a rerun resumes exactly.
* ``final_data`` has one row per id, the version with the latest updated_at. It has no primary key:
  the upsert (one transaction, in the ``duckdb`` pool's single slot) keeps one row per id, and a key
  index over 50M ids does not fit the pull's memory limit, so every upsert through it slowed 30x from an
  empty table to 50M rows (docs/scale.md).
* ``pull_rejects`` keeps the records that cannot land (not interchange JSON, not readable into the
  contract, refused by DuckDB) with their raw line and reason, landed with their page and its
  cursor; a line rejected again (fetched again because the cursor cannot move past it) is kept once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import orjson
import pyarrow as pa

from .. import warehouse
from ..warehouse import Column
from .validate import SOURCE_API_CONTRACT, UNKNOWN_COLUMN, Contract, PullCursor, RecordReject, page_max_key

# The contract's Arrow types as DuckDB types (the declared column types, and the source API's).
SQL_TYPES = {arrow: warehouse.SQL_TYPES[name] for name, arrow in warehouse.ARROW_TYPES.items()}


@dataclass(frozen=True)
class PullTables:
    """Where one pulled source lands: its tables, its ``pull_state`` row and its contract. The
    shipped source API's are ``SOURCE_API``; a declared ``RestApiSource`` gets its own, named from
    the instance (``for_instance``), so two sources never share a table or a checkpoint."""

    source: str  # its row in pull_state
    raw: str
    final: str
    rejects: str
    pages: str
    contract: Contract
    # merge: one row per key, the latest cursor wins; append: every version; replace: the last full read
    write: str = "merge"
    keep_unknown: bool = False  # fields outside the contract kept as JSON in UNKNOWN_COLUMN

    @classmethod
    def for_instance(
        cls, name: str, contract: Contract, write: str = "merge", keep_unknown: bool = False
    ) -> PullTables:
        return cls(name, f"{name}_raw", name, f"{name}_rejects", f"{name}_pages", contract, write, keep_unknown)

    @property
    def names(self) -> str:
        """The landed columns (the contract's, and the unknown fields' when kept), quoted."""
        return ", ".join(f'"{column.name}"' for column in self.contract_columns)

    @property
    def contract_columns(self) -> tuple[Column, ...]:
        # The tables' columns, made from the contract: the DDL and the assets' column schema in the
        # UI both come from these, so they cannot drift.
        declared = tuple(Column(field.name, SQL_TYPES[field.type]) for field in self.contract.schema)
        return (*declared, Column(UNKNOWN_COLUMN, "JSON")) if self.keep_unknown else declared

    def select_page(self, page: pa.Schema) -> str:
        """The SELECT list that reads a conformed page into the raw table: the unknown fields (a
        struct of the columns pyarrow read, or JSON text from the record-by-record path) as JSON."""
        declared = ", ".join(f'"{name}"' for name in self.contract.schema.names)
        if not self.keep_unknown:
            return declared
        kept = page.field(UNKNOWN_COLUMN).type
        if pa.types.is_struct(kept):
            return f'{declared}, to_json("{UNKNOWN_COLUMN}")'
        return f'{declared}, "{UNKNOWN_COLUMN}"::JSON'

    @property
    def raw_columns(self) -> tuple[Column, ...]:
        return (
            Column("page_seq", "BIGINT", not_null=True),
            Column("run_id", "VARCHAR", not_null=True),
            Column("page_cursor", "VARCHAR"),
            Column("extracted_at", "TIMESTAMPTZ", not_null=True),
            *self.contract_columns,
        )

    @property
    def final_columns(self) -> tuple[Column, ...]:
        return (*self.contract_columns, Column("loaded_at", "TIMESTAMPTZ", not_null=True))

    @property
    def ddl(self) -> list[warehouse.DDLStep]:
        return [
            "CREATE SEQUENCE IF NOT EXISTS ingestion.pull_page_seq START 1",
            warehouse.create_table(self.pages, PAGES_COLUMNS, primary_key=("page_seq",)),
            warehouse.create_table(self.raw, self.raw_columns),
            warehouse.evolve_table(self.raw, self.raw_columns),
            warehouse.create_table(self.final, self.final_columns),
            warehouse.without_primary_key(self.final, self.final_columns),  # files made before the key was dropped
            warehouse.evolve_table(self.final, self.final_columns),
            warehouse.create_table(self.rejects, REJECTS_COLUMNS, primary_key=("line_sha256",)),
            *STATE_DDL,
        ]


PAGES_COLUMNS = (
    Column("page_seq", "BIGINT", not_null=True),
    Column("run_id", "VARCHAR", not_null=True),
    Column("page_no", "INTEGER", not_null=True),
    Column("page_cursor", "VARCHAR"),
    Column("next_cursor", "VARCHAR"),
    Column("record_count", "INTEGER", not_null=True),
    Column("schema_issues", "VARCHAR[]", not_null=True),
    Column("backfill", "BOOLEAN", not_null=True),
    Column("landed_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
)
REJECTS_COLUMNS = (
    Column("line_sha256", "VARCHAR", not_null=True),  # the key: the same line rejected again is kept once
    Column("page_seq", "BIGINT", not_null=True),  # the pages row it came with
    Column("run_id", "VARCHAR", not_null=True),
    Column("page_cursor", "VARCHAR"),
    Column("raw_line", "BLOB", not_null=True),  # the bytes as the source sent them
    Column("reason", "VARCHAR", not_null=True),
    Column("rejected_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
)


def _cursor_as_text(conn: duckdb.DuckDBPyConnection) -> None:
    """A migration: files made before sources were declared kept the cursor as (TIMESTAMPTZ, BIGINT)
    columns, the source API's types; the cursor of any source is now kept as text (read back in its
    contract's types). Copied once, in one transaction."""
    old = warehouse.fetch_one(
        conn,
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'ingestion'"
        " AND table_name = 'pull_state' AND column_name = 'cursor_updated_at'",
    )[0]
    if not old:
        return
    with warehouse.transaction(conn):
        conn.execute("ALTER TABLE ingestion.pull_state ADD COLUMN IF NOT EXISTS cursor_value VARCHAR")
        conn.execute("ALTER TABLE ingestion.pull_state ADD COLUMN IF NOT EXISTS cursor_key VARCHAR")
        rows = conn.execute(
            "SELECT source, cursor_updated_at, cursor_id FROM ingestion.pull_state WHERE cursor_updated_at IS NOT NULL"
        ).fetchall()
        for source, value, key in rows:
            conn.execute(
                "UPDATE ingestion.pull_state SET cursor_value = ?, cursor_key = ? WHERE source = ?",
                [cursor_text(value), cursor_text(key), source],
            )
        conn.execute("ALTER TABLE ingestion.pull_state DROP COLUMN cursor_updated_at")
        conn.execute("ALTER TABLE ingestion.pull_state DROP COLUMN cursor_id")


STATE_DDL: list[warehouse.DDLStep] = [
    """
    CREATE TABLE IF NOT EXISTS ingestion.pull_state (
        source            VARCHAR PRIMARY KEY,
        cursor_value      VARCHAR,
        cursor_key        VARCHAR,
        loaded_page_seq   BIGINT NOT NULL DEFAULT 0,
        changed_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    )
    """,
    _cursor_as_text,
    # Which raw and pages tables the source lands in, so retention can trim every source's (files
    # from earlier versions get them at the source's next landing).
    "ALTER TABLE ingestion.pull_state ADD COLUMN IF NOT EXISTS raw_table VARCHAR",
    "ALTER TABLE ingestion.pull_state ADD COLUMN IF NOT EXISTS pages_table VARCHAR",
    # write: replace: the pages of the last extract that read the source to its end lie strictly
    # between these two draws of the page sequence (``begin_full_read``, ``complete_full_read``).
    "ALTER TABLE ingestion.pull_state ADD COLUMN IF NOT EXISTS full_read_from_seq BIGINT",
    "ALTER TABLE ingestion.pull_state ADD COLUMN IF NOT EXISTS full_read_to_seq BIGINT",
]

SOURCE_API = PullTables("source_api", "raw_extract", "final_data", "pull_rejects", "pull_pages", SOURCE_API_CONTRACT)
# The shipped source API's names, as the rest of the project (and the reference example) knows them.
SOURCE = SOURCE_API.source
RAW_TABLE, FINAL_TABLE, REJECTS_TABLE = SOURCE_API.raw, SOURCE_API.final, SOURCE_API.rejects
RAW_COLUMNS, FINAL_COLUMNS = SOURCE_API.raw_columns, SOURCE_API.final_columns
DDL = SOURCE_API.ddl


def cursor_text(value: object) -> str | None:
    """A cursor value as kept in pull_state (and sent to an API): a timestamp in ISO 8601."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _cursor_value(text: str | None, type_: pa.DataType) -> object:
    """A cursor value kept in pull_state, back in its contract type."""
    if text is None:
        return None
    return pa.scalar(text).cast(type_).as_py() if not pa.types.is_timestamp(type_) else datetime.fromisoformat(text)


@dataclass(frozen=True)
class LoadResult:
    inserted: int
    updated: int
    unchanged: int  # rows whose id already held the same or a newer version
    skipped: int  # rows without id or updated_at (never loaded; the check reports them)
    raw_rows: int
    pages: int
    final_rows: int


# ---------------------------------------------------------------- DuckDB reads and writes

_MEMORY_LIMIT = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


def limit_memory(conn: duckdb.DuckDBPyConnection, limit: str) -> None:
    """Cap DuckDB's buffer pool (it defaults to 80% of RAM and keeps what it wrote cached), so a
    pull's memory stays flat as the volume grows. Empty: leave DuckDB's own setting. The cap is
    per database instance, i.e. per run process."""
    if not limit:
        return
    if not _MEMORY_LIMIT.match(limit.strip()):
        raise ValueError(f"not a DuckDB memory size: {limit!r} (e.g. '256MB', '1GB')")
    conn.execute(f"SET memory_limit = '{limit.strip()}'")


def read_cursor(conn: duckdb.DuckDBPyConnection, tables: PullTables = SOURCE_API) -> PullCursor:
    row = conn.execute(
        "SELECT cursor_value, cursor_key FROM ingestion.pull_state WHERE source = ?", [tables.source]
    ).fetchone()
    contract = tables.contract
    if not row or row[0] is None or contract.cursor is None or contract.key is None:
        return PullCursor()
    schema = contract.schema
    return PullCursor(
        _cursor_value(row[0], schema.field(contract.cursor).type),
        _cursor_value(row[1], schema.field(contract.key).type),
    )


def land_page(
    conn: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    page_no: int,
    page_cursor: str | None,
    next_cursor: str | None,
    records: pa.Table,
    schema_issues: list[str],
    advance_cursor: bool = True,
    extracted_at: datetime,
    tables: PullTables = SOURCE_API,
    rejects: Sequence[RecordReject] = (),
) -> int | None:
    """Append one conformed page to raw_extract, its ``rejects`` to pull_rejects and, unless it is
    a backfill page, move the cursor forward to the page's newest key, in ONE transaction. Returns
    the page's sequence number (None: nothing to land, the page held only rejects kept already).

    Should DuckDB refuse a row, the page is bisected (``warehouse.land_isolating``): its parts land
    in order, each with its own pull_pages row and cursor move, and each refused row becomes a
    reject (the row as JSON, DuckDB's message as the reason); the first part's number is returned."""

    def land(part: list[RecordReject | int]) -> int | None:
        part_rejects = [item for item in part if isinstance(item, RecordReject)]
        rows = [item for item in part if not isinstance(item, RecordReject)]
        # A part is a contiguous run of the items, so its rows are a slice of the page.
        table = records.slice(rows[0], len(rows)) if rows else records.slice(0, 0)
        return _land_page_once(
            conn,
            run_id=run_id,
            page_no=page_no,
            page_cursor=page_cursor,
            next_cursor=next_cursor,
            records=table,
            schema_issues=schema_issues,
            advance_cursor=advance_cursor,
            extracted_at=extracted_at,
            tables=tables,
            rejects=part_rejects,
        )

    def refuse(one: list[RecordReject | int], reason: str) -> int | None:
        [item] = one
        raw = item.raw if isinstance(item, RecordReject) else _row_json(records, item)
        return land([RecordReject(raw, reason)])

    items: list[RecordReject | int] = [*rejects, *range(records.num_rows)]
    if not items:
        return land(items)
    landed = [seq for seq in warehouse.land_isolating(conn, items, land, refuse) if seq is not None]
    return landed[0] if landed else None


def _row_json(records: pa.Table, index: int) -> bytes:
    """A row of a conformed page as JSON, the raw line of a row DuckDB refused. A value Python
    cannot hold (text that is not UTF-8, a time past year 9999) is written as its bytes or number."""
    row = {}
    for name in records.column_names:
        scalar = records.column(name)[index]
        try:
            row[name] = scalar.as_py()
        except (ValueError, OverflowError):  # UnicodeDecodeError is a ValueError
            raw_type = pa.binary() if pa.types.is_string(scalar.type) else pa.int64()
            value = scalar.cast(raw_type).as_py()
            row[name] = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
    return orjson.dumps(row, default=str)


def _land_page_once(
    conn: duckdb.DuckDBPyConnection,
    *,
    run_id: str,
    page_no: int,
    page_cursor: str | None,
    next_cursor: str | None,
    records: pa.Table,
    schema_issues: list[str],
    advance_cursor: bool,
    extracted_at: datetime,
    tables: PullTables,
    rejects: Sequence[RecordReject],
) -> int | None:
    key = page_max_key(records, tables.contract) if advance_cursor else None
    by_hash = {hashlib.sha256(reject.raw).hexdigest(): reject for reject in rejects}
    with warehouse.transaction(conn):
        if by_hash:
            known = conn.execute(
                f"SELECT line_sha256 FROM ingestion.{tables.rejects} WHERE line_sha256 IN (SELECT unnest(?))",
                [list(by_hash)],
            ).fetchall()
            for (line_hash,) in known:
                del by_hash[line_hash]
            if not by_hash and records.num_rows == 0:
                return None  # only rejects, and each is kept already: no page to log
        page_seq = warehouse.fetch_one(conn, "SELECT nextval('ingestion.pull_page_seq')")[0]
        conn.execute(
            f"INSERT INTO ingestion.{tables.pages} (page_seq, run_id, page_no, page_cursor, next_cursor, record_count,"
            " schema_issues, backfill) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [page_seq, run_id, page_no, page_cursor, next_cursor, records.num_rows, schema_issues, not advance_cursor],
        )
        _pull_page = records  # scanned by name by DuckDB's Arrow replacement scan
        conn.execute(
            f"INSERT INTO ingestion.{tables.raw} (page_seq, run_id, page_cursor, extracted_at, {tables.names})"
            f" SELECT ?, ?, ?, ?, {tables.select_page(records.schema)} FROM _pull_page",
            [page_seq, run_id, page_cursor, extracted_at],
        )
        if by_hash:
            # Scanned by name by DuckDB's Arrow replacement scan.
            _pull_rejects = pa.table(
                {
                    "line_sha256": pa.array(list(by_hash), pa.string()),
                    "raw_line": pa.array([reject.raw for reject in by_hash.values()], pa.binary()),
                    "reason": pa.array([reject.reason for reject in by_hash.values()], pa.string()),
                }
            )
            conn.execute(
                f"INSERT INTO ingestion.{tables.rejects} (line_sha256, page_seq, run_id, page_cursor, raw_line, reason)"
                " SELECT line_sha256, ?, ?, ?, raw_line, reason FROM _pull_rejects ON CONFLICT DO NOTHING",
                [page_seq, run_id, page_cursor],
            )
        if key is not None:
            _advance_cursor(conn, tables, *key)
    return page_seq


def _advance_cursor(conn: duckdb.DuckDBPyConnection, tables: PullTables, value: object, key: object) -> None:
    """Move the cursor to (value, key) if that is later; it never goes backwards. Compared here, in
    the contract's types (kept as text, the cursor of any source fits one table)."""
    if (current := read_cursor(conn, tables)).is_start or (value, key) > (current.value, current.key):
        conn.execute(
            """
            INSERT INTO ingestion.pull_state (source, cursor_value, cursor_key, raw_table, pages_table)
            VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (source) DO UPDATE SET
                cursor_value = excluded.cursor_value, cursor_key = excluded.cursor_key,
                raw_table = excluded.raw_table, pages_table = excluded.pages_table, changed_at = now()
            """,
            [tables.source, cursor_text(value), cursor_text(key), tables.raw, tables.pages],
        )


def _loaded_through(conn: duckdb.DuckDBPyConnection, tables: PullTables) -> int:
    row = conn.execute("SELECT loaded_page_seq FROM ingestion.pull_state WHERE source = ?", [tables.source]).fetchone()
    return row[0] if row else 0


# Above any page number: the upper bound of what an incremental load takes.
_NO_END = 2**62


def begin_full_read(conn: duckdb.DuckDBPyConnection) -> int:
    """``write: replace``: a draw of the page sequence before an extract's first page."""
    return int(warehouse.fetch_one(conn, "SELECT nextval('ingestion.pull_page_seq')")[0])


def complete_full_read(conn: duckdb.DuckDBPyConnection, tables: PullTables, from_seq: int) -> None:
    """``write: replace``: the extract that drew ``from_seq`` read the source to its end; its pages
    (between that draw and this one) are what the next load puts in place of the final table. An
    extract that never gets here (killed, failed) leaves its pages unloaded, and retention trims them."""
    to_seq = begin_full_read(conn)
    conn.execute(
        """
        INSERT INTO ingestion.pull_state (source, full_read_from_seq, full_read_to_seq, raw_table, pages_table)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (source) DO UPDATE SET full_read_from_seq = excluded.full_read_from_seq,
            full_read_to_seq = excluded.full_read_to_seq, raw_table = excluded.raw_table,
            pages_table = excluded.pages_table, changed_at = now()
        """,
        [tables.source, from_seq, to_seq, tables.raw, tables.pages],
    )


def _unloaded_full_read(conn: duckdb.DuckDBPyConnection, tables: PullTables) -> tuple[int, int] | None:
    """``write: replace``: the page numbers around the last full read, (after, before), if the load
    has not taken it yet."""
    row = conn.execute(
        "SELECT full_read_from_seq, full_read_to_seq FROM ingestion.pull_state WHERE source = ?", [tables.source]
    ).fetchone()
    if not row or row[1] is None or row[1] <= _loaded_through(conn, tables):
        return None
    return row[0], row[1]


def _pending_bounds(conn: duckdb.DuckDBPyConnection, tables: PullTables) -> tuple[int, int]:
    """The pages the next load takes, as (after, before) page numbers: those landed since the last
    load; for ``write: replace``, those of the last full read not loaded yet (none: an empty range)."""
    loaded = _loaded_through(conn, tables)
    if tables.write != "replace":
        return loaded, _NO_END
    return _unloaded_full_read(conn, tables) or (loaded, loaded)


def pending_summary(conn: duckdb.DuckDBPyConnection, tables: PullTables = SOURCE_API) -> dict:
    """What the next load would take (raw pages landed since the last load), for the check."""
    lo, hi = _pending_bounds(conn, tables)
    contract = tables.contract
    pages, rows, issues = warehouse.fetch_one(
        conn,
        "SELECT count(*), coalesce(sum(record_count), 0),"
        f" list_distinct(flatten(list(schema_issues))) FROM ingestion.{tables.pages} WHERE page_seq > ? AND page_seq < ?",
        [lo, hi],
    )
    required = contract.required
    null_counts = [f'count(*) FILTER (WHERE "{c}" IS NULL)' for c in required]
    newest = f'max("{contract.cursor}")' if contract.cursor else "NULL"
    rows_in = f"FROM ingestion.{tables.raw} WHERE page_seq > $lo AND page_seq < $hi"
    stats = warehouse.fetch_one(conn, f"SELECT {', '.join([*null_counts, newest])} {rows_in}", {"lo": lo, "hi": hi})
    duplicate_versions = repeated_keys = 0
    if contract.key:
        # Grouped (spillable) rather than count(DISTINCT ...), which must fit in memory.
        version = f'"{contract.key}", "{contract.cursor}"' if contract.cursor else f'"{contract.key}"'
        if tables.write == "merge":
            duplicate_versions = warehouse.fetch_one(
                conn,
                f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n {rows_in} GROUP BY {version} HAVING n > 1)",
                {"lo": lo, "hi": hi},
            )[0]
        repeated_keys = warehouse.fetch_one(
            conn,
            f'SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n {rows_in} GROUP BY "{contract.key}" HAVING n > 1)',
            {"lo": lo, "hi": hi},
        )[0]
    rejected = warehouse.fetch_one(
        conn, f"SELECT count(*) FROM ingestion.{tables.rejects} WHERE page_seq > ? AND page_seq < ?", [lo, hi]
    )
    return {
        "pages": pages,
        "rows": rows,
        "rejects": rejected[0],
        "rejects_table": f"ingestion.{tables.rejects}",
        "schema_issues": sorted(issues or []),
        "nulls": {c: n for c, n in zip(required, stats[: len(required)], strict=True) if n},
        "duplicate_versions": duplicate_versions,
        "repeated_ids": repeated_keys,
        "newest_updated_at": stats[len(required)] or read_cursor(conn, tables).value,
    }


# DuckDB keeps 16 KiB of bookkeeping per 2,048-row vector a DELETE touches until the next checkpoint,
# committed or not, in the buffer pool. Replacing random ids touches one vector each, so an upsert that
# replaces 15,000 rows of a 50M-row table needs ~240 MiB, past the pull's 128 MB cap. So the rows are
# replaced this many at a time, each part committed and checkpointed (~64 MiB at most).
REPLACED_ROWS_PER_COMMIT = 4096


def upsert_final(
    conn: duckdb.DuckDBPyConnection,
    *,
    tables: PullTables = SOURCE_API,
    replaced_rows_per_commit: int = REPLACED_ROWS_PER_COMMIT,
) -> LoadResult:
    """Upsert every raw row landed since the last load into the final table by key (latest cursor
    value wins; for the source API: by id, latest updated_at) and record how far it loaded. A source
    declared ``write: append`` appends every pending row instead (``_append_final``).

    Each candidate is judged once against the row it would replace: new (no row), newer (replaces it)
    or not (left alone, so a replayed page changes nothing). The replacements are committed in parts
    of ``replaced_rows_per_commit`` (each part deletes the old rows and inserts the new ones in one
    transaction, so a reader sees one row per key throughout), and the load watermark moves with the
    last part. A crash between parts is harmless: the rerun judges again, and what a committed part
    wrote is no longer newer. No ON CONFLICT DO UPDATE: DuckDB's UPDATE path versions every touched
    vector and took 100x longer at 50M rows (docs/scale.md)."""
    if tables.write == "append":
        return _append_final(conn, tables)
    if tables.write == "replace":
        return _replace_final(conn, tables)
    key, cursor = f'"{tables.contract.key}"', f'"{tables.contract.cursor}"'
    final = f"ingestion.{tables.final}"
    with warehouse.transaction(conn):
        lo, hi, pages = _pending_pages(conn, tables)
        pending = f"FROM ingestion.{tables.raw} WHERE page_seq > $lo AND page_seq <= $hi"
        bounds = {"lo": lo, "hi": hi}
        raw_rows, skipped = warehouse.fetch_one(
            conn, f"SELECT count(*), count(*) FILTER (WHERE {key} IS NULL OR {cursor} IS NULL) {pending}", bounds
        )
        candidates = f"SELECT {tables.names} {pending} AND {key} IS NOT NULL AND {cursor} IS NOT NULL"
        # GROUP BY rather than count(DISTINCT ...): DuckDB spills a grouped aggregate to disk under
        # its memory limit, a DISTINCT aggregate it cannot.
        repeats = warehouse.fetch_one(
            conn,
            f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM ({candidates}) GROUP BY {key} HAVING n > 1)",
            bounds,
        )[0]
        if repeats:
            # Some key came more than once (updated while we paged, or a backfill): keep its newest.
            candidates += f" QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {cursor} DESC, page_seq DESC) = 1"
        # The judgement holds keys only (the join's build side and the temp table stay small under
        # the memory cap; a part reads its records again from the pending raw rows). The replaced
        # rows are numbered into parts in rowid order; the new ones (nothing to delete) are part 0.
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE pull_judged AS
            SELECT c.{key} AS id, f.rowid AS replaces, f.{key} IS NULL AS is_new,
                   CASE WHEN f.{key} IS NULL THEN 0
                        ELSE (row_number() OVER (PARTITION BY f.{key} IS NULL ORDER BY f.rowid) - 1) // $per_part
                   END AS part
            FROM (SELECT {key}, {cursor} FROM ({candidates})) c LEFT JOIN {final} f ON f.{key} = c.{key}
            WHERE f.{key} IS NULL OR c.{cursor} > f.{cursor}
            """,
            {**bounds, "per_part": replaced_rows_per_commit},
        )
        inserted, updated, parts = warehouse.fetch_one(
            conn,
            "SELECT count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new), coalesce(max(part) + 1, 0)"
            " FROM pull_judged",
        )
    try:
        for part in range(max(parts, 1)):
            last = part >= parts - 1
            try:
                with warehouse.transaction(conn):
                    _replace_part(conn, tables, part, candidates, bounds)
            except _RowsMoved:
                with warehouse.transaction(conn):
                    _replace_part(conn, tables, part, candidates, bounds, by_id=True)
            if last:
                with warehouse.transaction(conn):
                    _mark_loaded(conn, tables, hi)
            if not last:
                conn.execute("CHECKPOINT")  # frees the part's delete bookkeeping (see REPLACED_ROWS_PER_COMMIT)
        final_rows = warehouse.fetch_one(conn, f"SELECT count(*) FROM {final}")[0]
    finally:
        conn.execute("DROP TABLE IF EXISTS pull_judged")
    candidate_count = raw_rows - skipped - repeats
    return LoadResult(
        inserted=inserted,
        updated=updated,
        unchanged=candidate_count - inserted - updated,
        skipped=skipped,
        raw_rows=raw_rows,
        pages=pages,
        final_rows=final_rows,
    )


def _mark_loaded(conn: duckdb.DuckDBPyConnection, tables: PullTables, page_seq: int) -> None:
    conn.execute(
        """
        INSERT INTO ingestion.pull_state (source, loaded_page_seq, raw_table, pages_table) VALUES (?, ?, ?, ?)
        ON CONFLICT (source) DO UPDATE SET loaded_page_seq = excluded.loaded_page_seq,
            raw_table = excluded.raw_table, pages_table = excluded.pages_table, changed_at = now()
        """,
        [tables.source, page_seq, tables.raw, tables.pages],
    )


def _pending_pages(conn: duckdb.DuckDBPyConnection, tables: PullTables) -> tuple[int, int, int]:
    """(loaded through, last page landed, pages between): the pages the next load takes."""
    lo = _loaded_through(conn, tables)
    hi, pages = warehouse.fetch_one(
        conn,
        f"SELECT coalesce(max(page_seq), ?), count(*) FROM ingestion.{tables.pages} WHERE page_seq > ?",
        [lo, lo],
    )
    return lo, hi, pages


def _append_final(conn: duckdb.DuckDBPyConnection, tables: PullTables) -> LoadResult:
    """``write: append``: every pending raw row is appended to the final table, with the watermark,
    in one transaction (a rerun after a crash appends nothing twice: the watermark moved with them)."""
    with warehouse.transaction(conn):
        lo, hi, pages = _pending_pages(conn, tables)
        appended = warehouse.fetch_one(
            conn,
            f"INSERT INTO ingestion.{tables.final} ({tables.names}, loaded_at) SELECT {tables.names}, current_timestamp"
            f" FROM ingestion.{tables.raw} WHERE page_seq > ? AND page_seq <= ?",
            [lo, hi],
        )[0]
        _mark_loaded(conn, tables, hi)
        final_rows = warehouse.fetch_one(conn, f"SELECT count(*) FROM ingestion.{tables.final}")[0]
    return LoadResult(
        inserted=appended, updated=0, unchanged=0, skipped=0, raw_rows=appended, pages=pages, final_rows=final_rows
    )


def _replace_final(conn: duckdb.DuckDBPyConnection, tables: PullTables) -> LoadResult:
    """``write: replace``: the final table becomes the last full read's records (one per key when
    the source declares one: the one on the later page), with the watermark, in one transaction; a
    reader sees the old table or the new one. No new full read since the last load: nothing changes."""
    final = f"ingestion.{tables.final}"
    with warehouse.transaction(conn):
        if (read_bounds := _unloaded_full_read(conn, tables)) is None:
            rows = warehouse.fetch_one(conn, f"SELECT count(*) FROM {final}")[0]
            return LoadResult(inserted=0, updated=0, unchanged=0, skipped=0, raw_rows=0, pages=0, final_rows=rows)
        lo, hi = read_bounds
        pages = warehouse.fetch_one(
            conn, f"SELECT count(*) FROM ingestion.{tables.pages} WHERE page_seq > ? AND page_seq < ?", [lo, hi]
        )[0]
        read = f"FROM ingestion.{tables.raw} WHERE page_seq > $lo AND page_seq < $hi"
        raw_rows = warehouse.fetch_one(conn, f"SELECT count(*) {read}", {"lo": lo, "hi": hi})[0]
        latest = (
            f' QUALIFY row_number() OVER (PARTITION BY "{tables.contract.key}" ORDER BY page_seq DESC) = 1'
            if tables.contract.key
            else ""
        )
        replaced = warehouse.fetch_one(conn, f"DELETE FROM {final}")[0]  # DuckDB answers the count
        inserted = warehouse.fetch_one(
            conn,
            f"INSERT INTO {final} ({tables.names}, loaded_at) SELECT {tables.names}, current_timestamp"
            f" FROM (SELECT {tables.names} {read}{latest})",
            {"lo": lo, "hi": hi},
        )[0]
        _mark_loaded(conn, tables, hi)
    return LoadResult(
        inserted=inserted, updated=replaced, unchanged=0, skipped=raw_rows - inserted, raw_rows=raw_rows,
        pages=pages, final_rows=inserted,
    )  # fmt: skip


class _RowsMoved(Exception):
    """The rows at the judged rowids are not the ones to replace: a checkpoint compacted the table."""


def _replace_part(
    conn: duckdb.DuckDBPyConnection,
    tables: PullTables,
    part: int,
    candidates: str,
    bounds: dict,
    *,
    by_id: bool = False,
) -> None:
    """Delete the rows the part's candidates replace and insert the candidates (in the caller's
    transaction), read again from the pending raw rows (``candidates``, with its ``bounds``).

    The old rows are deleted at the rowids the judgement saw (no scan), and the ids deleted are
    compared with the part's: should a checkpoint between parts have moved rows (DuckDB compacts row
    groups with many deletions), ``_RowsMoved`` is raised so that the caller rolls the part back and
    does it again ``by_id`` (a scan of the table's ids)."""
    replaced = "FROM pull_judged WHERE part = $part AND NOT is_new"
    final, key = f"ingestion.{tables.final}", f'"{tables.contract.key}"'
    expected = {row_id for (row_id,) in conn.execute(f"SELECT id {replaced}", {"part": part}).fetchall()}
    if expected and by_id:
        conn.execute(f"DELETE FROM {final} WHERE {key} IN (SELECT id {replaced})", {"part": part})
    elif expected:
        deleted = conn.execute(
            f"DELETE FROM {final} WHERE rowid IN (SELECT replaces {replaced}) RETURNING {key}", {"part": part}
        ).fetchall()
        if len(deleted) != len(expected) or {row_id for (row_id,) in deleted} != expected:
            raise _RowsMoved
    conn.execute(
        f"INSERT INTO {final} ({tables.names}, loaded_at)"
        f" SELECT {tables.names}, current_timestamp FROM ({candidates})"
        f" WHERE {key} IN (SELECT id FROM pull_judged WHERE part = $part)",
        {**bounds, "part": part},
    )
