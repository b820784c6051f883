"""Retention in the DuckDB warehouse: the pull pattern's loaded raw pages and the poll pattern's landed plans.

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
from ..pull.landing import RAW_TABLE

PAGES_TABLE = "pull_pages"
PULL_STATE_TABLE = "pull_state"
OFFSETS_TABLE = "kafka_offsets"


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


def purge_loaded_raw_pages(
    conn: duckdb.DuckDBPyConnection, older_than_seconds: float, *, pages_per_batch: int = 100
) -> RawPurge:
    """Delete the raw pages (``raw_extract`` rows and their ``pull_pages`` row) that are loaded into
    ``final_data`` and were landed more than ``older_than_seconds`` ago, ``pages_per_batch`` pages per
    transaction. Pages not loaded yet are never touched, however old."""
    if not {RAW_TABLE, PAGES_TABLE, PULL_STATE_TABLE} <= existing_tables(conn):
        return RawPurge()
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
    # Every source's load must have passed a page (page_seq is shared): the least loaded one bounds it.
    loaded_through = _first(
        conn.execute(f"SELECT coalesce(min(loaded_page_seq), 0) FROM {warehouse.SCHEMA}.{PULL_STATE_TABLE}")
    )
    pages = [
        seq
        for (seq,) in conn.execute(
            f"SELECT page_seq FROM {warehouse.SCHEMA}.{PAGES_TABLE} WHERE page_seq <= ? AND landed_at < ? ORDER BY 1",
            [loaded_through, cutoff],
        ).fetchall()
    ]
    raw_rows = deleted_pages = batches = 0
    expired = (
        f"SELECT page_seq FROM {warehouse.SCHEMA}.{PAGES_TABLE}"
        " WHERE page_seq BETWEEN $lo AND $hi AND page_seq <= $loaded AND landed_at < $cutoff"
    )
    for start in range(0, len(pages), pages_per_batch):
        chunk = pages[start : start + pages_per_batch]
        bounds = {"lo": chunk[0], "hi": chunk[-1], "loaded": loaded_through, "cutoff": cutoff}
        with warehouse.transaction(conn):
            raw_rows += _first(
                conn.execute(
                    f"DELETE FROM {warehouse.SCHEMA}.{RAW_TABLE} WHERE page_seq BETWEEN $lo AND $hi"
                    f" AND page_seq IN ({expired})",
                    bounds,
                )
            )
            deleted_pages += _first(
                conn.execute(f"DELETE FROM {warehouse.SCHEMA}.{PAGES_TABLE} WHERE page_seq IN ({expired})", bounds)
            )
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


def file_bytes(path: str | Path) -> int:
    """The DuckDB file and its WAL."""
    path = Path(path)
    total = 0
    for part in (path, path.with_name(path.name + ".wal")):
        if part.exists():
            total += part.stat().st_size
    return total
