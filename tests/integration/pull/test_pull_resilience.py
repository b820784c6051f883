"""The pull pattern when things go wrong: faults, a crash mid-run, schema drift, a bad token."""

from __future__ import annotations

import asyncio

import dagster as dg
import pytest
from dg_project import kill_job_midway
from pull_helpers import final_rows, materialization_metadata, query, run_pull, source_rows

from ingestion_patterns.pull.client import PullStats, SourceApiAuthError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_with_429s_and_5xx_injected_the_result_is_identical(start_mock_api, tmp_path):
    clean = start_mock_api(records=6000)
    clean.mutate(create=100, update=300)
    # The same source (same state file), served badly: a tight rate limit, 20% 503s, some cut-off
    # bodies and some hung requests.
    faulty = start_mock_api(
        records=6000,
        rate_limit=10,
        rate_burst=3,
        fault_5xx_ratio=0.2,
        fault_truncate_ratio=0.05,
        fault_timeout_ratio=0.05,
        fault_timeout_seconds=3,
        fault_seed=7,
    )

    assert run_pull(clean.client(page_size=400), tmp_path / "clean.duckdb").success
    result = run_pull(faulty.client(page_size=400, read_timeout_seconds=1.0), tmp_path / "faulty.duckdb")
    assert result.success

    extract = materialization_metadata(result, "extract_source_data")
    assert extract["record_count"] == 6100
    assert extract["retries"] > 0
    assert extract["retry_reasons"].get("HTTP 429", 0) > 0
    assert extract["retry_reasons"].get("HTTP 503", 0) > 0
    assert final_rows(tmp_path / "faulty.duckdb") == final_rows(tmp_path / "clean.duckdb") == source_rows(clean)


def test_kill_9_midway_then_rerun_lands_everything_exactly_once(start_mock_api, tmp_path):
    records = 12_000
    api = start_mock_api(records=records, latency_ms=200)  # 40 pages of 300, >= 8 s of paging
    db = tmp_path / "warehouse.duckdb"
    run_config = tmp_path / "run.yaml"
    run_config.write_text("ops:\n  extract_source_data:\n    config:\n      batch_size: 300\n")
    env = {"DUCKDB_PATH": str(db), "SOURCE_API_URL": api.url, "SOURCE_API_TOKEN": api.token}
    kill_job_midway("pull_job", env=env, tmp_path=tmp_path, after="landed page 6:", run_config=run_config)

    pages = query(db, "SELECT count(*), coalesce(sum(record_count), 0) FROM ingestion.pull_pages")[0]
    assert 6 <= pages[0] < 40, f"not killed midway: {pages[0]} pages landed"
    assert query(db, "SELECT count(*) FROM ingestion.raw_extract") == [(pages[1],)]
    # The cursor is exactly the newest row landed: page and cursor committed together.
    newest = query(db, "SELECT updated_at, id FROM ingestion.raw_extract ORDER BY updated_at DESC, id DESC LIMIT 1")
    assert query(db, "SELECT cursor_value::TIMESTAMPTZ, cursor_key::BIGINT FROM ingestion.pull_state") == newest
    assert query(db, "SELECT count(*) FROM ingestion.final_data") == [(0,)]

    result = run_pull(api.client(page_size=300), db)
    assert result.success
    assert materialization_metadata(result, "extract_source_data")["record_count"] == records - pages[1]
    assert materialization_metadata(result, "load_to_storage")["inserted"] == records
    assert query(db, "SELECT count(*), count(DISTINCT (id, updated_at)) FROM ingestion.raw_extract") == [
        (records, records)
    ]
    assert final_rows(db) == source_rows(api)


def _check_evaluation(result: dg.ExecuteInProcessResult):
    [evaluation] = result.get_asset_check_evaluations()
    return evaluation


def test_a_source_that_changes_its_schema_fails_the_check_with_a_reason(start_mock_api, tmp_path):
    api = start_mock_api(records=1000)
    db = tmp_path / "warehouse.duckdb"
    assert run_pull(api.client(), db).success
    loaded = final_rows(db)

    api.admin("/admin/schema", {"mode": "renamed"})  # amount -> amount_cents
    api.mutate(update=50)
    result = run_pull(api.client(), db)
    evaluation = _check_evaluation(result)
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "schema: column 'amount' is missing" in evaluation.description
    assert "unexpected columns: amount_cents" in evaluation.description
    # The blocking check stopped the load: final_data still holds the last good data.
    assert "load_to_storage" not in {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert final_rows(db) == loaded

    api.admin("/admin/schema", {"mode": "retyped"})  # amount as a string
    result = run_pull(api.client(), tmp_path / "fresh.duckdb")
    evaluation = _check_evaluation(result)
    assert not evaluation.passed
    assert "schema: column 'amount' has type string, expected double" in evaluation.description


async def _drain(client, stats: PullStats) -> None:
    async for _page in client.rest_client(stats).pages():
        pass


def test_a_bad_token_fails_fast_with_a_clear_message(start_mock_api, tmp_path):
    api = start_mock_api(records=100)
    stats = PullStats()
    with pytest.raises(SourceApiAuthError, match=r"refused the credentials \(HTTP 401.*SOURCE_API_TOKEN"):
        asyncio.run(_drain(api.client(token="not-the-token", backoff_initial_seconds=5), stats))
    assert stats.retries == 0

    result = run_pull(api.client(token="not-the-token"), tmp_path / "warehouse.duckdb")
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "extract_source_data"
    assert "refused the credentials (HTTP 401" in failure.event_specific_data.user_failure_data.description
