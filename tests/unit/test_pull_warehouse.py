"""The pull pattern's warehouse functions on an in-memory DuckDB: contract, cursor, upsert, summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from ingestion_patterns import warehouse
from ingestion_patterns.pull import landing as pull
from ingestion_patterns.pull import validate

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def conn():
    connection = duckdb.connect()
    warehouse.ensure_schema(connection, pull.DDL)
    yield connection
    connection.close()


def page(ids, *, minutes=None, version=0, **overrides) -> pa.Table:
    """A page as the API sends it (timestamps as ISO strings), then conformed."""
    minutes = minutes if minutes is not None else ids
    stamps = [(T0 + timedelta(minutes=m)).isoformat().replace("+00:00", "Z") for m in minutes]
    columns = {
        "id": ids,
        "name": [f"n{i}" for i in ids],
        "email": [f"e{i}@x" for i in ids],
        "amount": [float(i) for i in ids],
        "status": ["active"] * len(ids),
        "category": ["books"] * len(ids),
        "version": [version] * len(ids),
        "created_at": stamps,
        "updated_at": stamps,
        **overrides,
    }
    table, issues = validate.conform(pa.table(columns))
    assert issues == []
    return table


def land(conn, table, *, advance=True, run="run-1", number=1):
    return pull.land_page(
        conn,
        run_id=run,
        page_no=number,
        page_cursor=None,
        next_cursor=None,
        records=table,
        schema_issues=[],
        advance_cursor=advance,
        extracted_at=T0,
    )


def test_conform_accepts_the_contract_and_widens_integers():
    table = page([1, 2], amount=[3, 4])  # JSON integers for a double column are fine
    assert table.schema == validate.CONTRACT
    assert table.column("amount").to_pylist() == [3.0, 4.0]
    assert table.column("updated_at")[0].as_py() == T0 + timedelta(minutes=1)


def test_conform_reports_missing_and_mistyped_columns():
    raw = pa.table(
        {
            "id": [1],
            "name": ["a"],
            "email": ["e"],
            "amount_cents": [100],
            "status": ["x"],
            "category": ["c"],
            "version": [0],
            "created_at": ["2026-01-01T00:00:00Z"],
            "updated_at": ["not a time"],
        }
    )
    table, issues = validate.conform(raw)
    assert issues == [
        "column 'amount' is missing",
        "column 'updated_at' has type string, expected timestamp[us, tz=UTC]",
        "unexpected columns: amount_cents",
    ]
    assert table.schema == validate.CONTRACT
    assert table.column("amount").null_count == 1
    _, issues = validate.conform(raw.drop_columns(["amount_cents"]).append_column("amount", pa.array(["1.5"])))
    assert "column 'amount' has type string, expected double" in issues


def test_drop_seen_keeps_only_rows_after_the_cursor():
    table = page([1, 2, 3, 4], minutes=[5, 5, 5, 6])
    cursor = pull.PullCursor(T0 + timedelta(minutes=5), 2)
    assert validate.drop_seen(table, cursor).column("id").to_pylist() == [3, 4]
    assert validate.drop_seen(table, pull.PullCursor()).num_rows == 4


def test_a_page_and_its_cursor_land_together_and_the_cursor_never_goes_back(conn):
    assert pull.read_cursor(conn).is_start
    land(conn, page([1, 2, 3], minutes=[1, 2, 2]))
    assert pull.read_cursor(conn) == pull.PullCursor(T0 + timedelta(minutes=2), 3)
    land(conn, page([9], minutes=[1]), number=2)  # an older page must not rewind the cursor
    assert pull.read_cursor(conn) == pull.PullCursor(T0 + timedelta(minutes=2), 3)
    land(conn, page([4], minutes=[9]), advance=False, number=3)  # a backfill page leaves it alone
    assert pull.read_cursor(conn).key == 3
    assert conn.execute("SELECT count(*), count(DISTINCT page_seq) FROM ingestion.raw_extract").fetchone() == (5, 3)


def test_a_failed_landing_leaves_neither_rows_nor_cursor(conn):
    land(conn, page([1], minutes=[1]))
    bad = page([2], minutes=[2]).drop_columns(["email"])  # not the contract: the INSERT fails
    with pytest.raises(duckdb.Error):
        land(conn, bad, number=2)
    assert conn.execute("SELECT count(*) FROM ingestion.raw_extract").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM ingestion.pull_pages").fetchone() == (1,)
    assert pull.read_cursor(conn).key == 1


def test_upsert_counts_inserts_and_updates_and_the_latest_version_wins(conn):
    land(conn, page([1, 2, 3]))
    first = pull.upsert_final(conn)
    assert (first.inserted, first.updated, first.unchanged, first.raw_rows, first.final_rows) == (3, 0, 0, 3, 3)

    # id 2 twice in the pending rows (newer one last), id 3 an older version, id 4 new.
    land(conn, page([2, 3, 4], minutes=[50, 0, 40], version=1), number=2)
    land(conn, page([2], minutes=[60], version=2), number=3)
    second = pull.upsert_final(conn)
    assert (second.inserted, second.updated, second.unchanged, second.raw_rows) == (1, 1, 1, 4)
    rows = conn.execute("SELECT id, version FROM ingestion.final_data ORDER BY id").fetchall()
    assert rows == [(1, 0), (2, 2), (3, 0), (4, 1)]

    third = pull.upsert_final(conn)
    assert (third.inserted, third.updated, third.raw_rows, third.pages) == (0, 0, 0, 0)

    # Pages landed again (a backfill of the same window): nothing is newer, so nothing changes.
    land(conn, page([2, 3, 4], minutes=[50, 0, 40], version=1), number=4)
    replayed = pull.upsert_final(conn)
    assert (replayed.inserted, replayed.updated, replayed.unchanged, replayed.final_rows) == (0, 0, 3, 4)
    assert conn.execute("SELECT id, version FROM ingestion.final_data ORDER BY id").fetchall() == rows


def test_pending_summary_reports_nulls_duplicates_and_schema_issues(conn):
    land(conn, page([1, 2]))
    pull.upsert_final(conn)
    table = page([5, 5, 6], minutes=[7, 7, 8])
    table = table.set_column(1, "name", pa.array([None, "x", "y"], pa.string()))
    pull.land_page(
        conn,
        run_id="r",
        page_no=1,
        page_cursor="c",
        next_cursor=None,
        records=table,
        schema_issues=["column 'name' is missing"],
        extracted_at=T0,
    )
    summary = pull.pending_summary(conn)
    assert summary["rows"] == 3 and summary["pages"] == 1
    assert summary["nulls"] == {"name": 1}
    assert summary["duplicate_versions"] == 1 and summary["repeated_ids"] == 1
    assert summary["schema_issues"] == ["column 'name' is missing"]
    assert summary["newest_updated_at"] == T0 + timedelta(minutes=8)


def test_limit_memory_rejects_what_is_not_a_size(conn):
    pull.limit_memory(conn, "200MB")
    assert conn.execute("SELECT current_setting('memory_limit')").fetchone()[0].startswith("190")
    with pytest.raises(ValueError, match="not a DuckDB memory size"):
        pull.limit_memory(conn, "200MB'; DROP TABLE x; --")


def test_each_asset_declares_its_table_with_the_columns_the_ddl_creates(conn):
    from ingestion_patterns.definitions import defs

    definitions = defs()
    for name, table in (("extract_source_data", "raw_extract"), ("load_to_storage", "final_data")):
        asset = definitions.resolve_assets_def(name)
        metadata = asset.specs_by_key[asset.key].metadata
        assert metadata["dagster/table_name"] == f"ingestion.{table}"
        declared = [
            (c.name, conn.execute(f"SELECT typeof(CAST(NULL AS {c.type}))").fetchone()[0])
            for c in metadata["dagster/column_schema"].columns
        ]
        created = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'ingestion' AND table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        assert declared == created
        assert set(validate.CONTRACT.names) <= {name for name, _ in declared}  # the contract lands whole


def test_an_upsert_in_parts_ends_as_one_upsert_and_a_crash_between_parts_is_finished_by_the_rerun(conn, monkeypatch):
    land(conn, page([1, 2, 3, 4, 5, 6]))
    pull.upsert_final(conn)
    land(conn, page([1, 2, 3, 4, 5, 7, 8], minutes=[50] * 7, version=1), number=2)

    real_part = pull._replace_part

    def crash_on_the_second_part(connection, tables, part, *args, **kwargs):
        if part == 1:
            raise RuntimeError("killed between parts")
        real_part(connection, tables, part, *args, **kwargs)

    monkeypatch.setattr(pull, "_replace_part", crash_on_the_second_part)
    with pytest.raises(RuntimeError, match="between parts"):
        pull.upsert_final(conn, replaced_rows_per_commit=2)
    # The first part (two replaced rows and the new ones) committed; the watermark did not move; one row per id.
    assert conn.execute("SELECT count(*), count(DISTINCT id) FROM ingestion.final_data").fetchone() == (8, 8)
    assert conn.execute("SELECT count(*) FROM ingestion.final_data WHERE version = 1").fetchone() == (4,)

    monkeypatch.setattr(pull, "_replace_part", real_part)
    rerun = pull.upsert_final(conn, replaced_rows_per_commit=2)
    assert (rerun.inserted, rerun.updated, rerun.unchanged) == (0, 3, 4)
    rows = conn.execute("SELECT id, version FROM ingestion.final_data ORDER BY id").fetchall()
    assert rows == [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 0), (7, 1), (8, 1)]


def test_a_replaced_row_that_moved_is_found_by_its_id_and_nothing_else_is_deleted(conn, monkeypatch):
    land(conn, page([1, 2, 3]))
    pull.upsert_final(conn)
    land(conn, page([2], minutes=[50], version=1), number=2)
    real_part = pull._replace_part
    attempts = []

    def after_a_compaction(connection, tables, part, *args, by_id=False):
        # As if a checkpoint had moved the rows: the judged rowid of id 2 now holds id 3.
        connection.execute("UPDATE pull_judged SET replaces = (SELECT rowid FROM ingestion.final_data WHERE id = 3)")
        attempts.append(by_id)
        real_part(connection, tables, part, *args, by_id=by_id)

    monkeypatch.setattr(pull, "_replace_part", after_a_compaction)
    result = pull.upsert_final(conn)
    assert attempts == [False, True], "the part was rolled back and done again by id"
    assert (result.updated, result.final_rows) == (1, 3)
    rows = conn.execute("SELECT id, version FROM ingestion.final_data ORDER BY id").fetchall()
    assert rows == [(1, 0), (2, 1), (3, 0)], "id 3 kept (its rowid held another id), id 2's old row replaced"


def test_a_cursor_kept_in_the_old_typed_columns_is_carried_over_as_text():
    # Files made before sources were declared kept the source API's cursor as (TIMESTAMPTZ, BIGINT).
    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA ingestion")
    connection.execute(
        "CREATE TABLE ingestion.pull_state (source VARCHAR PRIMARY KEY, cursor_updated_at TIMESTAMPTZ,"
        " cursor_id BIGINT, loaded_page_seq BIGINT NOT NULL DEFAULT 0,"
        " changed_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)"
    )
    connection.execute("INSERT INTO ingestion.pull_state VALUES ('source_api', ?, 42, 7, now())", [T0])
    warehouse.ensure_schema(connection, pull.DDL)
    warehouse.ensure_schema(connection, pull.DDL)  # idempotent
    assert pull.read_cursor(connection) == pull.PullCursor(T0, 42)
    assert connection.execute("SELECT loaded_page_seq FROM ingestion.pull_state").fetchall() == [(7,)]
    columns = {row[0] for row in connection.execute("DESCRIBE ingestion.pull_state").fetchall()}
    assert "cursor_updated_at" not in columns and "cursor_value" in columns


def test_unknown_fields_kept_from_either_reading_path_land_as_json_and_load_into_the_final_table(conn):
    import json

    import orjson

    schema = pa.schema([("id", pa.int64()), ("updated_at", pa.timestamp("us", tz="UTC"))])
    contract = validate.Contract(schema, ("id", "updated_at"), key="id", cursor="updated_at")
    tables = pull.PullTables.for_instance("things", contract, keep_unknown=True)
    warehouse.ensure_schema(conn, tables.ddl)

    # The fast path: pyarrow read every field as a column; the others become a struct, then JSON.
    fast = pa.table({"id": [1, 2], "updated_at": ["2026-01-01T00:00:00Z"] * 2, "note": ["a", None], "n": [1, 2]})
    # The record-by-record path (a field whose type changes between records: "note" a number, then a
    # string, then an object): the others travel as JSON text.
    records = [
        {"id": 3, "updated_at": "2026-01-02T00:00:00Z", "note": 7},
        {"id": 4, "updated_at": "2026-01-02T00:00:00Z", "note": "x"},
    ]
    records.append({"id": 5, "updated_at": "2026-01-02T00:00:00Z", "note": {"deep": [1]}})
    slow, rejects = validate.records_table([(orjson.dumps(r), r) for r in records], contract)
    assert rejects == []
    for number, read in enumerate((fast, slow), start=1):
        conformed, issues = validate.conform(read, contract, keep_unknown=True)
        assert issues == [] and conformed.column_names == ["id", "updated_at", "unknown_fields"]
        pull.land_page(
            conn, run_id="r", page_no=number, page_cursor=None, next_cursor=None, records=conformed,
            schema_issues=[], extracted_at=T0, tables=tables,
        )  # fmt: skip
    pull.upsert_final(conn, tables=tables)
    landed = {
        key: json.loads(text)
        for key, text in conn.execute("SELECT id, unknown_fields FROM ingestion.things").fetchall()
    }
    assert landed == {
        1: {"note": "a", "n": 1},
        2: {"note": None, "n": 2},
        3: {"note": 7},
        4: {"note": "x"},
        5: {"note": {"deep": [1]}},
    }
    # Without keep, the conformed page holds the contract's columns only (the others are reported).
    assert validate.conform(fast, contract)[0].column_names == ["id", "updated_at"]
    assert validate.unknown_columns(slow, contract) == ["note"]


def test_write_replace_puts_the_last_complete_full_read_in_place_of_the_final_table(conn):
    contract = validate.Contract(pull.SOURCE_API.contract.schema, ("id",), key="id", cursor=None)
    tables = pull.PullTables.for_instance("catalog", contract, write="replace")
    warehouse.ensure_schema(conn, tables.ddl)

    def read(pages: list[list[int]], *, complete: bool = True, version: int = 0) -> None:
        start = pull.begin_full_read(conn)
        for number, ids in enumerate(pages, start=1):
            pull.land_page(
                conn, run_id="r", page_no=number, page_cursor=None, next_cursor=None,
                records=page(ids, version=version), schema_issues=[], extracted_at=T0, tables=tables,
            )  # fmt: skip
        if complete:
            pull.complete_full_read(conn, tables, start)

    def final() -> list[tuple[int, int]]:
        return conn.execute("SELECT id, version FROM ingestion.catalog ORDER BY id").fetchall()

    read([[1, 2], [3]])
    assert pull.pending_summary(conn, tables)["rows"] == 3
    assert pull.upsert_final(conn, tables=tables).inserted == 3
    assert final() == [(1, 0), (2, 0), (3, 0)]

    # A read that never reached the end (killed midway) is not loaded: the table stays as it was.
    read([[1, 2, 3, 4]], complete=False, version=1)
    assert pull.pending_summary(conn, tables)["rows"] == 0
    assert pull.upsert_final(conn, tables=tables).inserted == 0
    assert final() == [(1, 0), (2, 0), (3, 0)]

    # The next full read replaces it whole: a record gone from the source is gone, a key read twice
    # (the source moved while it was paged) is kept once, from the later page.
    read([[2, 5], [5]], version=2)
    conn.execute(
        "UPDATE ingestion.catalog_raw SET version = 3 WHERE id = 5 AND page_seq = (SELECT max(page_seq) FROM ingestion.catalog_raw)"
    )
    result = pull.upsert_final(conn, tables=tables)
    assert (result.inserted, result.updated, result.raw_rows) == (2, 3, 3)
    assert final() == [(2, 2), (5, 3)]
    assert pull.upsert_final(conn, tables=tables).inserted == 0  # loaded once
