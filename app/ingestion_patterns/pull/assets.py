"""Pull pattern: page the source API into ``raw_extract``, check it, upsert it into ``final_data``.

``extract_source_data`` resumes from the cursor kept in ``ingestion.pull_state`` and lands each page
together with the advanced cursor in one DuckDB transaction, so a run killed at any point resumes
without losing or repeating a record. ``validate_extracted_data`` checks what is waiting to be
loaded; a broken contract is an ERROR that blocks ``load_to_storage``, which upserts by id (latest
``updated_at`` wins) and records how far it loaded in the same transaction.
"""

import asyncio
import time
from datetime import date, datetime, timedelta, timezone

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from .. import warehouse
from .client import PullStats, SourceApiAuthError, SourceApiError, SourceApiResource
from . import landing as pull
from .validate import assess_extract, conform, drop_seen


class ExtractConfig(dg.Config):
    start_date: str | None = Field(
        default=None,
        description="Backfill: re-pull records updated at or after this ISO date/datetime (UTC). "
        "A backfill never moves the normal cursor.")
    end_date: str | None = Field(
        default=None,
        description="Backfill: up to this ISO date (inclusive, whole day) or datetime (exclusive), UTC.")
    batch_size: int | None = Field(default=None, ge=1, description="Records per page; default: the resource's page_size.")


def parse_window_bound(value: str | None, *, end: bool = False) -> datetime | None:
    """A config date or datetime as an aware UTC datetime; a bare end date covers its whole day."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            parsed = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
            return parsed + timedelta(days=1) if end else parsed
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise dg.Failure(f"not an ISO 8601 date or datetime: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


async def _stream_pages(conn, source_api: SourceApiResource, *, run_id: str, log, since, before,
                        page_size, stats: PullStats, cursor: pull.PullCursor, backfill: bool) -> tuple[int, set[str]]:
    """Land every page as it arrives; the next page downloads while this one is written."""
    landed, issues_seen = 0, set()
    async for page in source_api.pages(updated_since=since, updated_before=before, page_size=page_size, stats=stats):
        records, issues = conform(page.records)
        if not backfill:
            records = drop_seen(records, cursor)
        if records.num_rows == 0:
            continue
        await asyncio.to_thread(
            pull.land_page, conn, run_id=run_id, page_no=page.number, page_cursor=page.cursor,
            next_cursor=page.next_cursor, records=records, schema_issues=issues, advance_cursor=not backfill,
            extracted_at=datetime.now(timezone.utc))
        landed += records.num_rows
        issues_seen.update(issues)
        log.info(f"landed page {page.number}: {records.num_rows} records ({landed} so far)")
    return landed, issues_seen


@dg.asset(
    group_name="pull",
    pool=warehouse.DUCKDB_POOL,
    kinds={"duckdb", "python"},
    description="Pages the source API (from the cursor in ingestion.pull_state) into ingestion.raw_extract.",
)
def extract_source_data(
    context: dg.AssetExecutionContext, config: ExtractConfig, source_api: SourceApiResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    since = parse_window_bound(config.start_date)
    before = parse_window_bound(config.end_date, end=True)
    backfill = since is not None or before is not None
    stats = PullStats()
    started = time.perf_counter()
    with warehouse.session(duckdb, pull.DDL) as conn:
        pull.limit_memory(conn, source_api.duckdb_memory_limit)
        cursor_before = pull.read_cursor(conn)
        if not backfill:
            since = cursor_before.updated_at
        context.log.info(f"{'backfill' if backfill else 'incremental'} pull from {since or 'the start'}"
                         + (f" to {before}" if before else ""))
        try:
            landed, issues = asyncio.run(_stream_pages(
                conn, source_api, run_id=context.run.run_id, log=context.log, since=since, before=before,
                page_size=config.batch_size, stats=stats, cursor=cursor_before, backfill=backfill))
        except SourceApiError as error:
            # Pages landed so far stay landed with their cursor; a rerun resumes after them.
            raise dg.Failure(description=str(error), allow_retries=not isinstance(error, SourceApiAuthError),
                             metadata={"pages_landed": stats.pages, "retries": stats.retries}) from error
        cursor_after = pull.read_cursor(conn)
    seconds = time.perf_counter() - started
    return dg.MaterializeResult(metadata={
        "mode": "backfill" if backfill else "incremental",
        "record_count": dg.MetadataValue.int(landed),
        "pages": dg.MetadataValue.int(stats.pages),
        "retries": dg.MetadataValue.int(stats.retries),
        "retry_reasons": dg.MetadataValue.json(dict(stats.retry_reasons)),
        "cursor_before": cursor_before.describe(),
        "cursor_after": cursor_after.describe(),
        "bytes_received": dg.MetadataValue.int(stats.bytes),
        "records_per_second": dg.MetadataValue.float(round(landed / seconds, 1) if seconds else 0.0),
        "schema_issues": dg.MetadataValue.json(sorted(issues)),
    })


@dg.asset_check(
    asset=extract_source_data,
    blocking=True,
    pool=warehouse.DUCKDB_POOL,
    description="Required columns and types, nulls, duplicate records and freshness of the rows waiting "
    "to be loaded; a schema break is an ERROR and blocks load_to_storage.",
)
def validate_extracted_data(duckdb: DuckDBResource, source_api: SourceApiResource) -> dg.AssetCheckResult:
    with warehouse.session(duckdb, pull.DDL) as conn:
        pull.limit_memory(conn, source_api.duckdb_memory_limit)
        summary = pull.pending_summary(conn)
    max_age = timedelta(hours=source_api.max_staleness_hours)
    errors, warnings = assess_extract(summary, now=datetime.now(timezone.utc), max_age=max_age)
    newest = summary["newest_updated_at"]
    metadata = {
        "pending_rows": dg.MetadataValue.int(summary["rows"]),
        "pending_pages": dg.MetadataValue.int(summary["pages"]),
        "ids_with_several_versions": dg.MetadataValue.int(summary["repeated_ids"]),
        "newest_updated_at": newest.isoformat() if newest else "none",
        "problems": dg.MetadataValue.json(errors + warnings),
    }
    if errors or warnings:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR if errors else dg.AssetCheckSeverity.WARN,
            description="; ".join(errors + warnings),
            metadata=metadata,
        )
    return dg.AssetCheckResult(passed=True, description=f"{summary['rows']} rows ready to load", metadata=metadata)


@dg.asset(
    group_name="pull",
    deps=[extract_source_data],
    pool=warehouse.DUCKDB_POOL,
    kinds={"duckdb"},
    description="Upserts the extracted rows into ingestion.final_data by id (latest updated_at wins).",
)
def load_to_storage(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, source_api: SourceApiResource
) -> dg.MaterializeResult:
    with warehouse.session(duckdb, pull.DDL) as conn:
        pull.limit_memory(conn, source_api.duckdb_memory_limit)
        result = pull.upsert_final(conn)
    context.log.info(f"upserted {result.raw_rows} raw rows: {result.inserted} inserted, {result.updated} updated")
    return dg.MaterializeResult(metadata={
        "inserted": dg.MetadataValue.int(result.inserted),
        "updated": dg.MetadataValue.int(result.updated),
        "unchanged": dg.MetadataValue.int(result.unchanged),
        "skipped_without_key": dg.MetadataValue.int(result.skipped),
        "raw_rows": dg.MetadataValue.int(result.raw_rows),
        "pages": dg.MetadataValue.int(result.pages),
        "final_rows": dg.MetadataValue.int(result.final_rows),
    })


pull_job = dg.define_asset_job(
    "pull_job",
    selection=dg.AssetSelection.assets(extract_source_data, load_to_storage),
    description="Extract from the source API, validate, upsert into final_data.",
)

daily_pull_schedule = dg.ScheduleDefinition(
    name="daily_pull_schedule",
    job=pull_job,
    cron_schedule="0 0 * * *",
    execution_timezone="UTC",
    description="The pull job at midnight UTC.",
)
