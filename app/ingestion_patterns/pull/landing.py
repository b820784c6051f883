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
from .validate import CONTRACT, REQUIRED, PullCursor, RecordReject, page_max_key

SOURCE = "source_api"  # the pull_state row of the (single) source API

RAW_TABLE = "raw_extract"
FINAL_TABLE = "final_data"
REJECTS_TABLE = "pull_rejects"

_SQL_TYPES = {
    pa.int64(): "BIGINT",
    pa.string(): "VARCHAR",
    pa.float64(): "DOUBLE",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}
# The two tables' columns, made from the contract: the DDL below and the assets' column schema in
# the UI both come from these, so they cannot drift.
_CONTRACT_COLUMNS = tuple(Column(field.name, _SQL_TYPES[field.type]) for field in CONTRACT)
RAW_COLUMNS = (
    Column("page_seq", "BIGINT", not_null=True),
    Column("run_id", "VARCHAR", not_null=True),
    Column("page_cursor", "VARCHAR"),
    Column("extracted_at", "TIMESTAMPTZ", not_null=True),
    *_CONTRACT_COLUMNS,
)
FINAL_COLUMNS = (*_CONTRACT_COLUMNS, Column("loaded_at", "TIMESTAMPTZ", not_null=True))
REJECTS_COLUMNS = (
    Column("line_sha256", "VARCHAR", not_null=True),  # the key: the same line rejected again is kept once
    Column("page_seq", "BIGINT", not_null=True),  # the pull_pages row it came with
    Column("run_id", "VARCHAR", not_null=True),
    Column("page_cursor", "VARCHAR"),
    Column("raw_line", "BLOB", not_null=True),  # the bytes as the source sent them
    Column("reason", "VARCHAR", not_null=True),
    Column("rejected_at", "TIMESTAMPTZ", not_null=True, default="current_timestamp"),
)
_NAMES = ", ".join(CONTRACT.names)


DDL: list[warehouse.DDLStep] = [
    "CREATE SEQUENCE IF NOT EXISTS ingestion.pull_page_seq START 1",
    """
    CREATE TABLE IF NOT EXISTS ingestion.pull_pages (
        page_seq      BIGINT PRIMARY KEY,
        run_id        VARCHAR NOT NULL,
        page_no       INTEGER NOT NULL,
        page_cursor   VARCHAR,
        next_cursor   VARCHAR,
        record_count  INTEGER NOT NULL,
        schema_issues VARCHAR[] NOT NULL,
        backfill      BOOLEAN NOT NULL,
        landed_at     TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    )
    """,
    warehouse.create_table(RAW_TABLE, RAW_COLUMNS),
    warehouse.create_table(FINAL_TABLE, FINAL_COLUMNS),
    warehouse.without_primary_key(FINAL_TABLE, FINAL_COLUMNS),  # files made before the key was dropped
    warehouse.create_table(REJECTS_TABLE, REJECTS_COLUMNS, primary_key=("line_sha256",)),
    """
    CREATE TABLE IF NOT EXISTS ingestion.pull_state (
        source            VARCHAR PRIMARY KEY,
        cursor_updated_at TIMESTAMPTZ,
        cursor_id         BIGINT,
        loaded_page_seq   BIGINT NOT NULL DEFAULT 0,
        changed_at        TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
    )
    """,
]


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


def read_cursor(conn: duckdb.DuckDBPyConnection, source: str = SOURCE) -> PullCursor:
    row = conn.execute(
        "SELECT cursor_updated_at, cursor_id FROM ingestion.pull_state WHERE source = ?", [source]
    ).fetchone()
    return PullCursor(*row) if row else PullCursor()


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
    source: str = SOURCE,
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
            source=source,
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
    source: str,
    rejects: Sequence[RecordReject],
) -> int | None:
    key = page_max_key(records) if advance_cursor else None
    by_hash = {hashlib.sha256(reject.raw).hexdigest(): reject for reject in rejects}
    with warehouse.transaction(conn):
        if by_hash:
            known = conn.execute(
                "SELECT line_sha256 FROM ingestion.pull_rejects WHERE line_sha256 IN (SELECT unnest(?))",
                [list(by_hash)],
            ).fetchall()
            for (line_hash,) in known:
                del by_hash[line_hash]
            if not by_hash and records.num_rows == 0:
                return None  # only rejects, and each is kept already: no page to log
        page_seq = warehouse.fetch_one(conn, "SELECT nextval('ingestion.pull_page_seq')")[0]
        conn.execute(
            "INSERT INTO ingestion.pull_pages (page_seq, run_id, page_no, page_cursor, next_cursor, record_count,"
            " schema_issues, backfill) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [page_seq, run_id, page_no, page_cursor, next_cursor, records.num_rows, schema_issues, not advance_cursor],
        )
        _pull_page = records  # scanned by name by DuckDB's Arrow replacement scan
        conn.execute(
            f"INSERT INTO ingestion.raw_extract (page_seq, run_id, page_cursor, extracted_at, {_NAMES})"
            f" SELECT ?, ?, ?, ?, {_NAMES} FROM _pull_page",
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
                "INSERT INTO ingestion.pull_rejects (line_sha256, page_seq, run_id, page_cursor, raw_line, reason)"
                " SELECT line_sha256, ?, ?, ?, raw_line, reason FROM _pull_rejects ON CONFLICT DO NOTHING",
                [page_seq, run_id, page_cursor],
            )
        if key is not None:
            _advance_cursor(conn, source, *key)
    return page_seq


def _advance_cursor(conn: duckdb.DuckDBPyConnection, source: str, updated_at: datetime, record_id: int) -> None:
    """Move the cursor to (updated_at, id) if that is later; it never goes backwards."""
    conn.execute(
        """
        INSERT INTO ingestion.pull_state (source, cursor_updated_at, cursor_id) VALUES ($source, $ts, $id)
        ON CONFLICT (source) DO UPDATE SET
            cursor_updated_at = excluded.cursor_updated_at, cursor_id = excluded.cursor_id,
            changed_at = now()
        WHERE pull_state.cursor_updated_at IS NULL
           OR (excluded.cursor_updated_at, excluded.cursor_id) > (pull_state.cursor_updated_at, pull_state.cursor_id)
        """,
        {"source": source, "ts": updated_at, "id": record_id},
    )


def _loaded_through(conn: duckdb.DuckDBPyConnection, source: str) -> int:
    row = conn.execute("SELECT loaded_page_seq FROM ingestion.pull_state WHERE source = ?", [source]).fetchone()
    return row[0] if row else 0


def pending_summary(conn: duckdb.DuckDBPyConnection, source: str = SOURCE) -> dict:
    """What the next load would take (raw pages landed since the last load), for the check."""
    lo = _loaded_through(conn, source)
    pages, rows, issues = warehouse.fetch_one(
        conn,
        "SELECT count(*), coalesce(sum(record_count), 0),"
        " list_distinct(flatten(list(schema_issues))) FROM ingestion.pull_pages WHERE page_seq > ?",
        [lo],
    )
    null_counts = ", ".join(f"count(*) FILTER (WHERE {c} IS NULL)" for c in REQUIRED)
    rows_in = "FROM ingestion.raw_extract WHERE page_seq > $lo"
    stats = warehouse.fetch_one(conn, f"SELECT {null_counts}, max(updated_at) {rows_in}", {"lo": lo})
    # Grouped (spillable) rather than count(DISTINCT ...), which must fit in memory.
    duplicate_versions = warehouse.fetch_one(
        conn,
        f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n {rows_in} GROUP BY id, updated_at HAVING n > 1)",
        {"lo": lo},
    )[0]
    repeated_ids = warehouse.fetch_one(
        conn,
        f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n {rows_in} GROUP BY id HAVING n > 1)",
        {"lo": lo},
    )[0]
    rejected = warehouse.fetch_one(conn, "SELECT count(*) FROM ingestion.pull_rejects WHERE page_seq > ?", [lo])
    return {
        "pages": pages,
        "rows": rows,
        "rejects": rejected[0],
        "schema_issues": sorted(issues or []),
        "nulls": {c: n for c, n in zip(REQUIRED, stats[: len(REQUIRED)], strict=True) if n},
        "duplicate_versions": duplicate_versions,
        "repeated_ids": repeated_ids,
        "newest_updated_at": stats[len(REQUIRED)] or read_cursor(conn, source).updated_at,
    }


# DuckDB keeps 16 KiB of bookkeeping per 2,048-row vector a DELETE touches until the next checkpoint,
# committed or not, in the buffer pool. Replacing random ids touches one vector each, so an upsert that
# replaces 15,000 rows of a 50M-row table needs ~240 MiB, past the pull's 128 MB cap. So the rows are
# replaced this many at a time, each part committed and checkpointed (~64 MiB at most).
REPLACED_ROWS_PER_COMMIT = 4096


def upsert_final(
    conn: duckdb.DuckDBPyConnection, *, source: str = SOURCE, replaced_rows_per_commit: int = REPLACED_ROWS_PER_COMMIT
) -> LoadResult:
    """Upsert every raw row landed since the last load into final_data by id (latest updated_at wins)
    and record how far it loaded.

    Each candidate is judged once against the row it would replace: new (no row), newer (replaces it)
    or not (left alone, so a replayed page changes nothing). The replacements are committed in parts
    of ``replaced_rows_per_commit`` (each part deletes the old rows and inserts the new ones in one
    transaction, so a reader sees one row per id throughout), and the load watermark moves with the
    last part. A crash between parts is harmless: the rerun judges again, and what a committed part
    wrote is no longer newer. No ON CONFLICT DO UPDATE: DuckDB's UPDATE path versions every touched
    vector and took 100x longer at 50M rows (docs/scale.md)."""
    with warehouse.transaction(conn):
        lo = _loaded_through(conn, source)
        hi, pages = warehouse.fetch_one(
            conn, "SELECT coalesce(max(page_seq), ?), count(*) FROM ingestion.pull_pages WHERE page_seq > ?", [lo, lo]
        )
        pending = "FROM ingestion.raw_extract WHERE page_seq > $lo AND page_seq <= $hi"
        bounds = {"lo": lo, "hi": hi}
        raw_rows, skipped = warehouse.fetch_one(
            conn, f"SELECT count(*), count(*) FILTER (WHERE id IS NULL OR updated_at IS NULL) {pending}", bounds
        )
        candidates = f"SELECT {_NAMES} {pending} AND id IS NOT NULL AND updated_at IS NOT NULL"
        # GROUP BY rather than count(DISTINCT ...): DuckDB spills a grouped aggregate to disk under
        # its memory limit, a DISTINCT aggregate it cannot.
        repeats = warehouse.fetch_one(
            conn,
            f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM ({candidates}) GROUP BY id HAVING n > 1)",
            bounds,
        )[0]
        if repeats:
            # Some id came more than once (updated while we paged, or a backfill): keep its newest.
            candidates += " QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_at DESC, page_seq DESC) = 1"
        # The judgement holds keys only (the join's build side and the temp table stay small under
        # the memory cap; a part reads its records again from the pending raw rows). The replaced
        # rows are numbered into parts in rowid order; the new ones (nothing to delete) are part 0.
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE pull_judged AS
            SELECT c.id, f.rowid AS replaces, f.id IS NULL AS is_new,
                   CASE WHEN f.id IS NULL THEN 0
                        ELSE (row_number() OVER (PARTITION BY f.id IS NULL ORDER BY f.rowid) - 1) // $per_part
                   END AS part
            FROM (SELECT id, updated_at FROM ({candidates})) c LEFT JOIN ingestion.final_data f ON f.id = c.id
            WHERE f.id IS NULL OR c.updated_at > f.updated_at
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
                    _replace_part(conn, part, candidates, bounds)
            except _RowsMoved:
                with warehouse.transaction(conn):
                    _replace_part(conn, part, candidates, bounds, by_id=True)
            if last:
                with warehouse.transaction(conn):
                    conn.execute(
                        """
                        INSERT INTO ingestion.pull_state (source, loaded_page_seq) VALUES (?, ?)
                        ON CONFLICT (source) DO UPDATE SET loaded_page_seq = excluded.loaded_page_seq,
                                                           changed_at = now()
                        """,
                        [source, hi],
                    )
            if not last:
                conn.execute("CHECKPOINT")  # frees the part's delete bookkeeping (see REPLACED_ROWS_PER_COMMIT)
        final_rows = warehouse.fetch_one(conn, "SELECT count(*) FROM ingestion.final_data")[0]
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


class _RowsMoved(Exception):
    """The rows at the judged rowids are not the ones to replace: a checkpoint compacted the table."""


def _replace_part(
    conn: duckdb.DuckDBPyConnection, part: int, candidates: str, bounds: dict, *, by_id: bool = False
) -> None:
    """Delete the rows the part's candidates replace and insert the candidates (in the caller's
    transaction), read again from the pending raw rows (``candidates``, with its ``bounds``).

    The old rows are deleted at the rowids the judgement saw (no scan), and the ids deleted are
    compared with the part's: should a checkpoint between parts have moved rows (DuckDB compacts row
    groups with many deletions), ``_RowsMoved`` is raised so that the caller rolls the part back and
    does it again ``by_id`` (a scan of the table's ids)."""
    replaced = "FROM pull_judged WHERE part = $part AND NOT is_new"
    expected = {row_id for (row_id,) in conn.execute(f"SELECT id {replaced}", {"part": part}).fetchall()}
    if expected and by_id:
        conn.execute(f"DELETE FROM ingestion.final_data WHERE id IN (SELECT id {replaced})", {"part": part})
    elif expected:
        deleted = conn.execute(
            f"DELETE FROM ingestion.final_data WHERE rowid IN (SELECT replaces {replaced}) RETURNING id", {"part": part}
        ).fetchall()
        if len(deleted) != len(expected) or {row_id for (row_id,) in deleted} != expected:
            raise _RowsMoved
    conn.execute(
        f"INSERT INTO ingestion.final_data ({_NAMES}, loaded_at)"
        f" SELECT {_NAMES}, current_timestamp FROM ({candidates})"
        " WHERE id IN (SELECT id FROM pull_judged WHERE part = $part)",
        {**bounds, "part": part},
    )
