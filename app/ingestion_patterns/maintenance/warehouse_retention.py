"""Retention in the DuckDB warehouse: the pull pattern's loaded raw pages and the poll pattern's landed
plans, and the dedup of webhook events re-sent after the inbox forgot them.

Both deletions only remove what a checkpoint stored with the data already covers, so no landing can
need them again: a raw page at or below ``pull_state.loaded_page_seq`` is in ``final_data`` (the load
reads only pages above it), and a plan row whose ``to_offset`` the stored offset has reached has
nothing left to land (the process step reads from the stored offsets). Run in the ``duckdb`` pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from .. import warehouse
from ..poll.landing import PLAN_TABLE
from ..pull.landing import SOURCE_API, PullTables
from ..push.landing import DATA_COLUMNS as WEBHOOK_COLUMNS
from ..push.landing import DATA_TABLE as WEBHOOK_TABLE

PAGES_TABLE = SOURCE_API.pages
PULL_STATE_TABLE = "pull_state"
OFFSETS_TABLE = "kafka_offsets"
# How far each maintenance task has looked (e.g. the webhook dedup's landed_at watermark).
MAINTENANCE_STATE_DDL = f"""
CREATE TABLE IF NOT EXISTS {warehouse.SCHEMA}.maintenance_state (
    task         VARCHAR PRIMARY KEY,
    done_through TIMESTAMPTZ NOT NULL
)"""
# Rows landed this long before the watermark are looked at again: a landing that began before the
# last dedup may have committed after it (its landed_at is its transaction's start).
_DEDUP_OVERLAP = timedelta(hours=1)


@dataclass(frozen=True)
class RawPurge:
    raw_rows: int = 0  # rows deleted from raw_extract
    pages: int = 0  # rows deleted from pull_pages
    batches: int = 0


def _first(cursor: duckdb.DuckDBPyConnection, default: Any = 0) -> Any:
    """The first column of the statement's one row (a DELETE's row count, an aggregate)."""
    row = cursor.fetchone()
    return row[0] if row else default


def existing_tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [warehouse.SCHEMA]
    ).fetchall()
    return {name for (name,) in rows}


def pulled_sources(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    """``(raw table, pages table, loaded through)`` of every pulled source (its ``pull_state`` row): the
    reference pull and each ``RestApiSource``. A row from before the tables were recorded names the
    default ones (the reference's, or ``<source>_raw`` and ``<source>_pages``)."""
    tables = existing_tables(conn)
    if PULL_STATE_TABLE not in tables:
        return []
    found = []
    for source, raw, pages, loaded in conn.execute(
        f"SELECT source, raw_table, pages_table, loaded_page_seq FROM {warehouse.SCHEMA}.{PULL_STATE_TABLE}"
        " ORDER BY source"
    ).fetchall():
        default = SOURCE_API if source == SOURCE_API.source else PullTables.for_instance(source, SOURCE_API.contract)
        raw, pages = raw or default.raw, pages or default.pages
        if {raw, pages} <= tables:
            found.append((raw, pages, loaded))
    return found


def purge_loaded_raw_pages(
    conn: duckdb.DuckDBPyConnection, older_than_seconds: float, *, pages_per_batch: int = 100
) -> RawPurge:
    """Delete the raw pages (raw rows and their pages row) of every pulled source (``raw_extract``
    and ``pull_pages`` for the reference pull, ``<name>_raw`` and ``<name>_pages`` for a declared
    REST API) that its load has taken into the final table and that were landed more than
    ``older_than_seconds`` ago, ``pages_per_batch`` pages per transaction. Pages not loaded yet are
    never touched, however old."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
    total = RawPurge()
    for raw, pages, loaded_through in pulled_sources(conn):
        done = _purge_source_pages(conn, raw, pages, loaded_through, cutoff, pages_per_batch)
        total = RawPurge(total.raw_rows + done.raw_rows, total.pages + done.pages, total.batches + done.batches)
    return total


def _purge_source_pages(
    conn: duckdb.DuckDBPyConnection, raw: str, pages: str, loaded_through: int, cutoff: datetime, per_batch: int
) -> RawPurge:
    schema = warehouse.SCHEMA
    expired_seqs = [
        seq
        for (seq,) in conn.execute(
            f"SELECT page_seq FROM {schema}.{pages} WHERE page_seq <= ? AND landed_at < ? ORDER BY 1",
            [loaded_through, cutoff],
        ).fetchall()
    ]
    raw_rows = deleted_pages = batches = 0
    expired = (
        f"SELECT page_seq FROM {schema}.{pages}"
        " WHERE page_seq BETWEEN $lo AND $hi AND page_seq <= $loaded AND landed_at < $cutoff"
    )
    for start in range(0, len(expired_seqs), per_batch):
        chunk = expired_seqs[start : start + per_batch]
        bounds = {"lo": chunk[0], "hi": chunk[-1], "loaded": loaded_through, "cutoff": cutoff}
        with warehouse.transaction(conn):
            raw_rows += _first(
                conn.execute(
                    f"DELETE FROM {schema}.{raw} WHERE page_seq BETWEEN $lo AND $hi AND page_seq IN ({expired})",
                    bounds,
                )
            )
            deleted_pages += _first(conn.execute(f"DELETE FROM {schema}.{pages} WHERE page_seq IN ({expired})", bounds))
        batches += 1
    return RawPurge(raw_rows=raw_rows, pages=deleted_pages, batches=batches)


def purge_landed_poll_plans(conn: duckdb.DuckDBPyConnection) -> int:
    """Delete the poll plan rows with nothing left to land: the stored offset of their partition has
    reached ``to_offset`` (or the range was empty). Returns how many."""
    if not {PLAN_TABLE, OFFSETS_TABLE} <= existing_tables(conn):
        return 0
    with warehouse.transaction(conn):
        return _first(
            conn.execute(
                f"""
            DELETE FROM {warehouse.SCHEMA}.{PLAN_TABLE} AS plan
            WHERE plan.to_offset <= plan.from_offset
               OR plan.to_offset <= (
                    SELECT o.next_offset FROM {warehouse.SCHEMA}.{OFFSETS_TABLE} AS o
                    WHERE o.topic = plan.topic AND o."partition" = plan."partition")
                """
            )
        )


def webhook_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables that hold landed webhook payloads: ``webhook_data`` and each table a source declared
    as its own, found by their columns (they are all made from ``push.landing.DATA_COLUMNS``)."""
    shape = sorted(column.name for column in WEBHOOK_COLUMNS)
    rows = conn.execute(
        "SELECT table_name, list(column_name ORDER BY column_name) FROM information_schema.columns"
        " WHERE table_schema = ? GROUP BY table_name ORDER BY table_name",
        [warehouse.SCHEMA],
    ).fetchall()
    return [name for name, columns in rows if list(columns) == shape]


def dedupe_webhook_data(conn: duckdb.DuckDBPyConnection) -> int:
    """Delete the later copies of an event (same ``source_id`` and ``event_id``) in ``webhook_data``
    and the webhook tables sources declared, keeping the first landed (lowest ``inbox_seq``); returns
    how many rows it deleted.

    A copy can only come from the inbox accepting an event id it had forgotten (re-sent after
    ``WEBHOOK_INBOX_RETENTION``), so a later copy landed after the previous dedup: only the keys
    landed since then (with an overlap) are looked up, in one scan of the table's key columns."""
    conn.execute(MAINTENANCE_STATE_DDL)
    return sum(_dedupe_webhook_table(conn, name) for name in webhook_tables(conn))


def _dedupe_webhook_table(conn: duckdb.DuckDBPyConnection, name: str) -> int:
    table = f"{warehouse.SCHEMA}.{name}"
    # The shared table keeps the watermark's first name, so files from earlier versions go on from it.
    task = "webhook_dedup" if name == WEBHOOK_TABLE else f"webhook_dedup:{name}"
    with warehouse.transaction(conn):
        watermark = conn.execute(
            f"SELECT done_through FROM {warehouse.SCHEMA}.maintenance_state WHERE task = ?", [task]
        ).fetchone()
        since = watermark[0] - _DEDUP_OVERLAP if watermark else datetime.min.replace(tzinfo=UTC)
        through = _first(conn.execute(f"SELECT max(landed_at) FROM {table}"), None)
        deleted = _first(
            conn.execute(
                f"""
            DELETE FROM {table} AS w USING (
                SELECT source_id, event_id, min(inbox_seq) AS first_seq
                FROM {table}
                WHERE (source_id, event_id) IN (SELECT (source_id, event_id) FROM {table} WHERE landed_at >= $since)
                GROUP BY source_id, event_id HAVING count(*) > 1
            ) AS copies
            WHERE w.source_id = copies.source_id AND w.event_id = copies.event_id AND w.inbox_seq > copies.first_seq
            """,
                {"since": since},
            )
        )
        if through is not None:
            conn.execute(
                f"INSERT INTO {warehouse.SCHEMA}.maintenance_state VALUES (?, ?)"
                " ON CONFLICT (task) DO UPDATE SET done_through = excluded.done_through",
                [task, through],
            )
    return deleted


def file_bytes(path: str | Path) -> int:
    """The DuckDB file and its WAL."""
    path = Path(path)
    total = 0
    for part in (path, path.with_name(path.name + ".wal")):
        if part.exists():
            total += part.stat().st_size
    return total
