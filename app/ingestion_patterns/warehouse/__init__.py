"""The DuckDB warehouse: this package owns the ``ingestion`` schema and every write to it.

Each pattern has one module here with its tables' DDL and its landing functions; assets call those
functions instead of writing SQL of their own. Every landing function writes the data and its
checkpoint (inbox ids, pull cursor, Kafka offsets) in one transaction, so a crash replays instead
of losing or doubling rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typing import TYPE_CHECKING

import duckdb

from . import kafka, pull, webhooks

if TYPE_CHECKING:
    from dagster_duckdb import DuckDBResource

SCHEMA = "ingestion"
_MODULES = (webhooks, pull, kafka)


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the schema and every table that does not exist yet (idempotent)."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for module in _MODULES:
        for statement in module.DDL:
            conn.execute(statement)


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file, creating its folder and the schema when writable."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path), read_only=read_only)
    if not read_only:
        ensure_schema(conn)
    return conn


@contextmanager
def session(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writable connection from the Dagster resource, with the folder and schema in place."""
    Path(resource.database).parent.mkdir(parents=True, exist_ok=True)
    with resource.get_connection() as conn:
        ensure_schema(conn)
        yield conn


def table_counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row count of every table in the ``ingestion`` schema, by name."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY 1",
            [SCHEMA],
        ).fetchall()
    ]
    return {name: conn.execute(f"SELECT count(*) FROM {SCHEMA}.{name}").fetchone()[0] for name in names}


# Every asset that writes the warehouse runs in this Dagster concurrency pool, limited to one slot
# (dagster.yaml locally, the daemon's instance config in the cluster): DuckDB allows one writer.
DUCKDB_POOL = "duckdb"
