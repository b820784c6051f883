"""Pure pieces of the pull: the check's verdict, config windows, Retry-After and page parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from ingestion_patterns.pull.assets import parse_window_bound
from ingestion_patterns.pull.client import parse_ndjson, parse_retry_after
from ingestion_patterns.pull.rest_api.client import read_json_records
from ingestion_patterns.pull.validate import assess_extract

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def summary(**overrides) -> dict:
    base = {"schema_issues": [], "nulls": {}, "duplicate_versions": 0, "newest_updated_at": NOW - timedelta(hours=1)}
    return {**base, **overrides}


def test_a_clean_fresh_extract_passes():
    assert assess_extract(summary(), now=NOW, max_age=timedelta(hours=48)) == ([], [])


def test_contract_breaks_are_errors_and_staleness_a_warning():
    errors, warnings = assess_extract(
        summary(
            schema_issues=["column 'amount' is missing"],
            nulls={"email": 3},
            duplicate_versions=2,
            newest_updated_at=NOW - timedelta(days=3),
        ),
        now=NOW,
        max_age=timedelta(hours=48),
    )
    assert errors == [
        "schema: column 'amount' is missing",
        "3 null value(s) in required column 'email'",
        "2 duplicate record(s): same id and updated_at more than once",
    ]
    assert len(warnings) == 1 and warnings[0].startswith("stale: newest updated_at 2026-05-29")


def test_window_bounds_parse_dates_and_datetimes_as_utc():
    assert parse_window_bound("2026-03-01") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_window_bound("2026-03-01", end=True) == datetime(2026, 3, 2, tzinfo=UTC)
    assert parse_window_bound("2026-03-01T05:00:00") == datetime(2026, 3, 1, 5, tzinfo=UTC)
    assert parse_window_bound("2026-03-01T05:00:00+02:00") == datetime(2026, 3, 1, 3, tzinfo=UTC)
    assert parse_window_bound(None) is None
    with pytest.raises(dg.Failure, match="not an ISO 8601"):
        parse_window_bound("yesterday")


def test_retry_after_reads_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 01 Jun 2026 12:00:30 GMT", now=NOW) == 30.0
    assert parse_retry_after("Wed, 01 Jun 2026 11:00:00 GMT", now=NOW) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_pages_parse_from_json_lines_and_from_an_envelope():
    lines = b'{"id":1,"amount":2.5}\n{"id":2,"amount":3.0}\n'
    table = parse_ndjson(lines)
    assert table.column("id").to_pylist() == [1, 2]
    assert parse_ndjson(b"").num_rows == 0
    table, _, found = read_json_records(
        b'{"data":[{"id":1}],"next_cursor":"abc","has_more":true}', "data", "next_cursor"
    )
    assert table.column("id").to_pylist() == [1] and found == {"next_cursor": "abc"}


def test_the_pull_job_has_its_failed_runs_retried_by_the_daemon():
    from ingestion_patterns.dagster_conventions import RUN_RETRY_TAGS
    from ingestion_patterns.definitions import defs

    assert RUN_RETRY_TAGS.items() <= defs().resolve_job_def("pull_job").tags.items()
