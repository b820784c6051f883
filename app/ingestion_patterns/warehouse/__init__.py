"""The DuckDB warehouse core: the ``ingestion`` schema, connections, and the one transaction helper.

Each pattern owns its tables (``push/landing.py``, ``pull/landing.py``, ``poll/landing.py``: their DDL
and landing functions) and opens its connection here with its DDL, so a table exists before it is
written. Every landing function writes the data and its checkpoint (inbox ids, pull cursor, Kafka
offsets) inside ``transaction(conn)``, so a crash replays instead of losing or doubling rows.
``land_isolating`` lands a batch so that no single record can fail it: what the database refuses
becomes a reject with the database's reason, and the rest lands (docs/architecture.md, "Bad records").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sized
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import duckdb
import pyarrow as pa

if TYPE_CHECKING:
    from dagster_duckdb import DuckDBResource

SCHEMA = "ingestion"

# Every asset that writes the warehouse runs in this Dagster concurrency pool, limited to one slot
# (dagster.yaml locally, the daemon's instance config in the cluster): DuckDB allows one writer.
DUCKDB_POOL = "duckdb"


# The column types a declared source may give its columns (the same for every kind of source), as
# DuckDB and as Arrow types.
ColumnType = Literal["bigint", "double", "varchar", "boolean", "timestamptz"]
SQL_TYPES: dict[str, str] = {
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "varchar": "VARCHAR",
    "boolean": "BOOLEAN",
    "timestamptz": "TIMESTAMPTZ",
}
ARROW_TYPES: dict[str, pa.DataType] = {
    "bigint": pa.int64(),
    "double": pa.float64(),
    "varchar": pa.string(),
    "boolean": pa.bool_(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class Column:
    """One column of a table, declared once: its DDL and the asset's column schema in the UI come from it."""

    name: str
    sql_type: str
    not_null: bool = False
    default: str = ""  # a SQL expression, e.g. current_timestamp

    def ddl(self) -> str:
        # Quoted: "partition" and "offset" are SQL keywords.
        parts = [
            f'"{self.name}"',
            self.sql_type,
            "NOT NULL" if self.not_null else "",
            f"DEFAULT {self.default}" if self.default else "",
        ]
        return " ".join(part for part in parts if part)


def create_table(table: str, columns: Iterable[Column], primary_key: Iterable[str] = ()) -> str:
    """``CREATE TABLE IF NOT EXISTS ingestion.<table>`` of ``columns``."""
    lines = [column.ddl() for column in columns]
    if keys := [f'"{name}"' for name in primary_key]:
        lines.append(f"PRIMARY KEY ({', '.join(keys)})")
    return f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{table} (\n    " + ",\n    ".join(lines) + "\n)"


# A step of a pattern's DDL: an idempotent statement, or a migration that checks before it changes.
DDLStep = str | Callable[[duckdb.DuckDBPyConnection], None]


def ensure_schema(conn: duckdb.DuckDBPyConnection, ddl: Iterable[DDLStep] = ()) -> None:
    """Create the schema and the tables of ``ddl`` that do not exist yet, and run its migrations (idempotent)."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for step in ddl:
        if callable(step):
            step(conn)
        else:
            conn.execute(step)


class ContractChangeError(ValueError):
    """A declared table's columns changed in a way that cannot migrate in place (see ``evolve_table``)."""


def evolve_table(table: str, columns: tuple[Column, ...]) -> Callable[[duckdb.DuckDBPyConnection], None]:
    """A migration for a table made from a declaration (a source's contract), run after its
    ``create_table``: a column declared since is added (nullable, so the rows already there stay
    valid); a column removed, retyped, or made NOT NULL since fails with a reason that names it,
    before anything is written, because the rows already landed would no longer mean what they say."""

    def migrate(conn: duckdb.DuckDBPyConnection) -> None:
        have = {
            name: (sql_type, nullable == "YES")
            for name, sql_type, nullable in conn.execute(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
                " WHERE table_schema = ? AND table_name = ?",
                [SCHEMA, table],
            ).fetchall()
        }
        declared = {column.name: column for column in columns}
        problems = [
            f"column '{name}' is in {SCHEMA}.{table} but no longer declared (removing a column is not migrated)"
            for name in have
            if name not in declared
        ]
        added = []
        for column in columns:
            if column.name not in have:
                if column.not_null and not column.default:
                    problems.append(f"column '{column.name}' is new and required: existing rows have no value for it")
                added.append(column)
                continue
            sql_type, nullable = have[column.name]
            if sql_type.upper() != column.sql_type.upper().replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"):
                problems.append(f"column '{column.name}' is {sql_type} in {SCHEMA}.{table}, declared {column.sql_type}")
            elif column.not_null and nullable:
                problems.append(f"column '{column.name}' is declared required, but {SCHEMA}.{table} allows nulls in it")
        if problems:
            raise ContractChangeError(f"{SCHEMA}.{table} cannot follow its declaration: " + "; ".join(problems))
        for column in added:
            conn.execute(f"ALTER TABLE {SCHEMA}.{table} ADD COLUMN {Column(column.name, column.sql_type).ddl()}")

    return migrate


def without_primary_key(table: str, columns: tuple[Column, ...]) -> Callable[[duckdb.DuckDBPyConnection], None]:
    """A migration: rebuild ``table`` without the primary key an earlier version declared on it.

    Keys over random values cost every landing a walk of an index that does not fit in memory, and
    DuckDB cannot drop a constraint in place (docs/scale.md). The rebuild copies the rows once, in one
    transaction, into a table made from ``columns`` (so NOT NULL and defaults stay); a file without
    the key is left alone."""

    def migrate(conn: duckdb.DuckDBPyConnection) -> None:
        keyed = fetch_one(
            conn,
            "SELECT count(*) FROM duckdb_constraints() WHERE schema_name = ? AND table_name = ?"
            " AND constraint_type = 'PRIMARY KEY'",
            [SCHEMA, table],
        )[0]
        if not keyed:
            return
        names = ", ".join(f'"{column.name}"' for column in columns)
        with transaction(conn):
            conn.execute(create_table(f"{table}__rebuilt", columns))
            conn.execute(f"INSERT INTO {SCHEMA}.{table}__rebuilt ({names}) SELECT {names} FROM {SCHEMA}.{table}")
            conn.execute(f"DROP TABLE {SCHEMA}.{table}")
            conn.execute(f"ALTER TABLE {SCHEMA}.{table}__rebuilt RENAME TO {table}")

    return migrate


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """``BEGIN`` … ``COMMIT``; on any error (a kill signal's exception included) ``ROLLBACK`` and re-raise."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# Errors a value in the batch causes (the database or Arrow refused it), as opposed to the state of the
# database (a lock, a full disk, a lost file) or a bug (a missing column, a broken constraint such as
# a replayed primary key: those must fail the run, not turn records into rejects).
DATA_ERRORS: tuple[type[BaseException], ...] = (
    duckdb.DataError,  # ConversionException (e.g. malformed JSON in a JSON cast), OutOfRangeException
    duckdb.InvalidInputException,  # e.g. malformed JSON in a JSON function
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    UnicodeError,  # a str Arrow cannot encode (a lone surrogate)
)
_REASON_LIMIT = 1000

Batch = TypeVar("Batch", bound=Sized)
Result = TypeVar("Result")


def is_data_error(error: BaseException) -> bool:
    """Whether ``error`` is one a record's value causes (see ``DATA_ERRORS``)."""
    return isinstance(error, DATA_ERRORS)


def refusal_reason(error: BaseException) -> str:
    """The database's error message as a reject's reason: its first line (DuckDB appends the SQL)."""
    text = str(error).strip()
    first = text.splitlines()[0].strip() if text else type(error).__name__
    return first if len(first) <= _REASON_LIMIT else first[: _REASON_LIMIT - 1] + "…"


def land_isolating(
    conn: duckdb.DuckDBPyConnection,
    batch: Batch,
    land: Callable[[Batch], Result],
    reject: Callable[[Batch, str], Result],
) -> list[Result]:
    """Land ``batch`` so that no record in it can fail the landing: ``[land(batch)]`` when it lands.

    ``land(part)`` lands a part of the batch in one transaction of its own (data and checkpoint);
    ``reject(one, reason)`` lands a part of exactly one record as a reject, with ``reason``, in one
    transaction of its own (its checkpoint too). When ``land`` fails with a data error (a value the
    database or Arrow refuses, ``DATA_ERRORS``), the batch is split in halves and each is landed the
    same way, the first half before the second, down to the single records refused: each becomes a
    reject whose reason is the database's error message. So the landing that committed last always
    covers a prefix of the batch, and a crash in between replays only what follows (the caller's
    checkpoints move forward only). Cost: one failed attempt and about two landings per level, for
    each refused record (log2 of the batch's size levels); nothing extra when nothing is refused.

    Any other error (the database's state, a bug, a broken constraint) is raised, and so is a data
    error when the connection no longer answers afterwards. ``batch`` is a sequence or an Arrow
    table (sliced, not copied). Returns the results of every ``land`` and ``reject`` call, in order.
    """
    try:
        return [land(batch)]
    except Exception as error:
        if not is_data_error(error) or len(batch) == 0:
            raise
        try:
            conn.execute("SELECT 1").fetchall()  # a refused value, not a connection gone bad
        except duckdb.Error:
            raise error from None
        if len(batch) == 1:
            return [reject(batch, refusal_reason(error))]
    middle = len(batch) // 2
    first: Any = batch[:middle]  # type: ignore[index]
    second: Any = batch[middle:]  # type: ignore[index]
    return land_isolating(conn, first, land, reject) + land_isolating(conn, second, land, reject)


def connect(path: str | Path, *, read_only: bool = False, ddl: Iterable[DDLStep] = ()) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file; when writable, create its folder, the schema and ``ddl``'s tables."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path), read_only=read_only)
    if not read_only:
        ensure_schema(conn, ddl)
    return conn


@contextmanager
def session(resource: DuckDBResource, ddl: Iterable[DDLStep] = ()) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writable connection from the Dagster resource with ``ddl``'s tables in place, closed on the
    way out whatever happens: a failed step must not keep DuckDB's file lock for its process's life."""
    Path(resource.database).parent.mkdir(parents=True, exist_ok=True)
    with resource.get_connection() as conn:
        try:
            ensure_schema(conn, ddl)
            yield conn
        finally:
            conn.close()  # dagster_duckdb closes it only when the block succeeds


@asynccontextmanager
async def async_session(
    resource: DuckDBResource,
    ddl: Iterable[DDLStep] = (),
    setup: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> AsyncIterator[duckdb.DuckDBPyConnection]:
    """``session`` for an async step: entered and left in a worker thread, since connecting runs the
    DDL and closing may checkpoint the WAL, blocking calls that must not stall the event loop.
    ``setup(conn)`` runs in that thread too (e.g. a memory limit). Use ``asyncio.to_thread`` for
    every call on the connection."""
    manager = session(resource, ddl)
    conn = await asyncio.to_thread(manager.__enter__)
    try:
        if setup is not None:
            await asyncio.to_thread(setup, conn)
        yield conn
    except BaseException as error:
        if not await asyncio.to_thread(manager.__exit__, type(error), error, error.__traceback__):
            raise
    else:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def fetch_one(conn: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> tuple[Any, ...]:
    """The row a statement that always returns one (an aggregate, an upsert's RETURNING) returned."""
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise LookupError(f"the statement returned no row: {sql.strip()[:120]}")
    return row


def table_counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row count of every table in the ``ingestion`` schema, by name."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY 1",
            [SCHEMA],
        ).fetchall()
    ]
    return {name: count_rows(conn, name) for name in names}


def count_rows(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    """Rows in ``ingestion.<table>``."""
    row = conn.execute(f"SELECT count(*) FROM {SCHEMA}.{table}").fetchone()
    return int(row[0]) if row else 0
