"""The pull pattern end to end against the mock API in its own gunicorn process."""

from __future__ import annotations

import pytest
from pull_helpers import final_rows, materialization_metadata, query, run_pull, source_rows

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_first_pull_lands_everything_and_a_second_lands_nothing(start_mock_api, tmp_path):
    api = start_mock_api(records=5000)
    db = tmp_path / "warehouse.duckdb"

    first = run_pull(api.client(), db)
    assert first.success
    extract = materialization_metadata(first, "extract_source_data")
    load = materialization_metadata(first, "load_to_storage")
    assert extract["record_count"] == 5000
    assert extract["pages"] == 8  # ceil(5000 / 700)
    assert extract["cursor_before"] == "start"
    assert (load["inserted"], load["updated"]) == (5000, 0)
    assert final_rows(db) == source_rows(api)

    second = run_pull(api.client(), db)
    assert second.success
    extract = materialization_metadata(second, "extract_source_data")
    load = materialization_metadata(second, "load_to_storage")
    assert extract["record_count"] == 0
    assert extract["cursor_before"] == extract["cursor_after"]
    assert (load["inserted"], load["updated"], load["raw_rows"]) == (0, 0, 0)
    assert query(db, "SELECT count(*) FROM ingestion.raw_extract") == [(5000,)]


def test_after_creates_and_updates_the_next_pull_lands_exactly_those(start_mock_api, tmp_path):
    api = start_mock_api(records=3000, workers=2)  # the mutation is made through one worker
    db = tmp_path / "warehouse.duckdb"
    assert run_pull(api.client(), db).success

    change = api.mutate(create=150, update=400)
    result = run_pull(api.client(), db)
    assert result.success
    extract = materialization_metadata(result, "extract_source_data")
    load = materialization_metadata(result, "load_to_storage")
    assert extract["record_count"] == 550
    assert (load["inserted"], load["updated"]) == (150, 400)
    landed = query(db, "SELECT id FROM ingestion.raw_extract WHERE run_id = ? ORDER BY id", [result.run_id])
    expected_ids = sorted(change["updated_ids"] + list(range(3001, 3151)))
    assert [row[0] for row in landed] == expected_ids
    assert final_rows(db) == source_rows(api)


def test_a_backfill_window_repulls_without_moving_the_cursor(start_mock_api, tmp_path):
    api = start_mock_api(records=2000)
    db = tmp_path / "warehouse.duckdb"
    assert run_pull(api.client(), db).success
    cursor = query(db, "SELECT cursor_value::TIMESTAMPTZ, cursor_key::BIGINT FROM ingestion.pull_state")
    records = api.export()
    window = sorted(r["updated_at"] for r in records)[500:1000]

    result = run_pull(api.client(), db, extract_config={"start_date": window[0], "end_date": window[-1]})
    assert result.success
    extract = materialization_metadata(result, "extract_source_data")
    assert extract["mode"] == "backfill"
    assert extract["record_count"] == 499  # [start, end): the end bound is exclusive for datetimes
    assert query(db, "SELECT cursor_value::TIMESTAMPTZ, cursor_key::BIGINT FROM ingestion.pull_state") == cursor
    assert materialization_metadata(result, "load_to_storage")["updated"] == 0  # same versions
    assert final_rows(db) == source_rows(api)


def test_each_materialization_reports_the_row_count_of_its_table(shared_mock_api, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    for _ in range(2):  # the second pull lands nothing: the tables keep their 50 rows
        result = run_pull(shared_mock_api.client(), db)
        assert result.success
        assert materialization_metadata(result, "extract_source_data")["dagster/row_count"] == 50
        assert materialization_metadata(result, "load_to_storage")["dagster/row_count"] == 50
