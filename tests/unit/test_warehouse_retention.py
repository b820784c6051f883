"""Retention in the warehouse (maintenance/warehouse_retention.py) on an in-memory DuckDB: only raw
pages that are loaded and old go, only poll plans that have landed go, and loading goes on as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest

from ingestion_patterns import warehouse
from ingestion_patterns.maintenance.warehouse_retention import purge_landed_poll_plans, purge_loaded_raw_pages
from ingestion_patterns.poll import landing as poll
from ingestion_patterns.pull import landing as pull
from ingestion_patterns.pull import validate

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86_400.0


@pytest.fixture
def conn():
    connection = duckdb.connect()
    warehouse.ensure_schema(connection, [*pull.DDL, *poll.DDL])
    yield connection
    connection.close()


def page(ids: list[int], minute: int) -> pa.Table:
    stamp = (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")
    table, issues = validate.conform(
        pa.table(
            {
                "id": ids,
                "name": [f"n{i}" for i in ids],
                "email": [f"e{i}@x" for i in ids],
                "amount": [float(i) for i in ids],
                "status": ["active"] * len(ids),
                "category": ["books"] * len(ids),
                "version": [minute] * len(ids),
                "created_at": [stamp] * len(ids),
                "updated_at": [stamp] * len(ids),
            }
        )
    )
    assert issues == []
    return table


def land(conn, ids: list[int], minute: int) -> int:
    return pull.land_page(
        conn, run_id="r", page_no=1, page_cursor=None, next_cursor=None, records=page(ids, minute),
        schema_issues=[], extracted_at=T0,
    )  # fmt: skip


def age_pages(conn, seqs: list[int], days: float) -> None:
    conn.execute(
        "UPDATE ingestion.pull_pages SET landed_at = now() - to_seconds(?) WHERE page_seq IN (SELECT unnest(?))",
        [days * DAY, seqs],
    )


def count(conn, table: str) -> int:
    return warehouse.count_rows(conn, table)


def test_only_loaded_pages_older_than_the_window_are_deleted(conn):
    loaded = [land(conn, [i * 10 + k for k in range(10)], minute=i) for i in range(5)]
    pull.upsert_final(conn)
    unloaded = [land(conn, [100 + k for k in range(10)], minute=10)]
    age_pages(conn, loaded[:3] + unloaded, days=8)  # pages 4 and 5 are loaded but recent

    result = purge_loaded_raw_pages(conn, 7 * DAY, pages_per_batch=2)

    assert (result.raw_rows, result.pages, result.batches) == (30, 3, 2)
    remaining = [
        seq for (seq,) in conn.execute("SELECT DISTINCT page_seq FROM ingestion.raw_extract ORDER BY 1").fetchall()
    ]
    assert remaining == loaded[3:] + unloaded, "the unloaded page stays however old"
    assert [s for (s,) in conn.execute("SELECT page_seq FROM ingestion.pull_pages ORDER BY 1").fetchall()] == remaining
    assert count(conn, "final_data") == 50

    # The next load takes exactly the page it had not loaded, as before.
    assert pull.pending_summary(conn)["rows"] == 10
    loaded_now = pull.upsert_final(conn)
    assert (loaded_now.inserted, loaded_now.pages) == (10, 1)
    assert count(conn, "final_data") == 60
    assert purge_loaded_raw_pages(conn, 7 * DAY).raw_rows == 10  # now loaded, and old
    assert purge_loaded_raw_pages(conn, 7 * DAY) == type(result)()


def test_nothing_to_purge_before_the_pull_pattern_ever_ran():
    connection = duckdb.connect()
    warehouse.ensure_schema(connection)
    assert purge_loaded_raw_pages(connection, DAY).raw_rows == 0
    assert purge_landed_poll_plans(connection) == 0


def test_only_poll_plans_that_have_landed_are_deleted(conn):
    poll.save_poll_plan(conn, "t", {0: (0, 10), 1: (0, 10), 2: (5, 5), 3: (0, 4)})
    poll.save_poll_plan(conn, "other", {0: (0, 3)})
    conn.execute(
        "INSERT INTO ingestion.kafka_offsets (topic, \"partition\", next_offset) VALUES ('t', 0, 10), ('t', 1, 7)"
    )

    assert purge_landed_poll_plans(conn) == 2  # t/0 landed; t/2 had nothing to land
    assert poll.poll_plan(conn, "t") == {1: (0, 10), 3: (0, 4)}
    assert poll.poll_plan(conn, "other") == {0: (0, 3)}
    assert purge_landed_poll_plans(conn) == 0


def test_the_dedup_keeps_the_first_copy_of_a_re_sent_webhook_event_and_looks_only_at_new_keys():
    from ingestion_patterns.maintenance.warehouse_retention import dedupe_webhook_data
    from ingestion_patterns.push import landing as push

    with duckdb.connect() as conn:
        warehouse.ensure_schema(conn, push.DDL)
        assert dedupe_webhook_data(conn) == 0  # empty table

        def deliver(seq: int, event_id: str, landed_days_ago: float) -> None:
            conn.execute(
                "INSERT INTO ingestion.webhook_data (source_id, event_id, payload, inbox_seq, received_at, landed_at)"
                " VALUES ('s', ?, '{}', ?, now(), now() - to_seconds(?))",
                [event_id, seq, landed_days_ago * DAY],
            )

        for seq, event in enumerate(["a", "b", "c"], start=1):
            deliver(seq, event, landed_days_ago=30)
        deliver(4, "a", landed_days_ago=20)  # "a" re-sent after the inbox's window
        assert dedupe_webhook_data(conn) == 1
        assert dedupe_webhook_data(conn) == 0
        deliver(5, "b", landed_days_ago=0)  # "b" re-sent again, after the last dedup: a copy of an old row
        deliver(6, "b", landed_days_ago=0)
        deliver(7, "d", landed_days_ago=0)
        assert dedupe_webhook_data(conn) == 2
        rows = conn.execute("SELECT event_id, inbox_seq FROM ingestion.webhook_data ORDER BY inbox_seq").fetchall()
        assert rows == [("a", 1), ("b", 2), ("c", 3), ("d", 7)]


def test_every_pulled_source_s_raw_pages_are_trimmed_each_by_its_own_load(conn):
    from ingestion_patterns.maintenance.warehouse_retention import pulled_sources

    things = pull.PullTables.for_instance("things", pull.SOURCE_API.contract)
    warehouse.ensure_schema(conn, things.ddl)

    def land_things(ids: list[int], minute: int) -> int:
        return pull.land_page(
            conn, run_id="r", page_no=1, page_cursor=None, next_cursor=None, records=page(ids, minute),
            schema_issues=[], extracted_at=T0, tables=things,
        )  # fmt: skip

    reference = [land(conn, [i * 10 + k for k in range(10)], minute=i) for i in range(3)]
    instance = [land_things([i * 10 + k for k in range(5)], minute=i) for i in range(2)]
    pull.upsert_final(conn)
    pull.upsert_final(conn, tables=things)
    behind = land_things([500, 501], minute=9)  # the instance's newest page is not loaded yet
    age_pages(conn, reference, days=8)
    conn.execute("UPDATE ingestion.things_pages SET landed_at = now() - INTERVAL 8 DAY")
    # A row kept by an earlier version names no tables: the defaults are found.
    conn.execute("UPDATE ingestion.pull_state SET raw_table = NULL, pages_table = NULL WHERE source = 'things'")
    assert pulled_sources(conn) == [
        ("raw_extract", "pull_pages", reference[-1]),
        ("things_raw", "things_pages", instance[-1]),
    ]

    result = purge_loaded_raw_pages(conn, 7 * DAY)

    # Each source up to its own load: the reference's pages go although the instance is behind it.
    assert (result.raw_rows, result.pages) == (30 + 10, 3 + 2)
    assert count(conn, "raw_extract") == 0 and count(conn, "pull_pages") == 0
    assert conn.execute("SELECT DISTINCT page_seq FROM ingestion.things_raw").fetchall() == [(behind,)]
    assert conn.execute("SELECT page_seq FROM ingestion.things_pages").fetchall() == [(behind,)]
    assert (count(conn, "final_data"), count(conn, "things")) == (30, 10)
    assert pull.upsert_final(conn, tables=things).inserted == 2  # the instance's next load goes on
