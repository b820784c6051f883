"""Pull pattern: a declared REST API (``RestApiSource``) paged into its raw table, checked, and
upserted into its final table. The reference example's source API is one such instance
(``defs/rest_apis/source_api``: ``extract_source_data`` -> ``validate_extracted_data`` ->
``load_to_storage`` over ``raw_extract`` and ``final_data``, in ``pull_job``).

The extract resumes from the instance's cursor in ``ingestion.pull_state`` and lands each page
together with the advanced cursor in one DuckDB transaction, so a run killed at any point resumes
without losing or repeating a record. The check looks at what is waiting to be loaded; a broken
contract is an ERROR that blocks the load, which upserts by key (latest cursor value wins) and
records how far it loaded in the same transaction.

The assets are coroutines: Dagster runs a step's coroutine in that step's one event loop, where the
HTTP client pages the API, and every DuckDB call goes to a worker thread, so the next page
downloads while one lands. The jobs' failed runs are retried by the daemon (``RUN_RETRY_TAGS``).
"""

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import dagster as dg
import pyarrow as pa
from dagster_duckdb import DuckDBResource
from duckdb import DuckDBPyConnection
from pydantic import Field

from .. import warehouse
from ..dagster_conventions import KIND_TAG, RUN_RETRY_TAGS, SOURCE_TAG, row_count_metadata, table_metadata
from . import landing as pull
from .client import PullStats, SourceApiAuthError, SourceApiError, SourceApiResource
from .landing import PullTables
from .rest_api.client import RestApiClient, RestApiConfigError
from .source import RestApiSourceSpec
from .validate import PullCursor, RecordReject, assess_extract, conform, drop_seen, records_table, unknown_columns


class ExtractConfig(dg.Config):
    start_date: str | None = Field(
        default=None,
        description="Backfill: re-pull records updated at or after this ISO date/datetime (UTC). "
        "A backfill never moves the normal cursor.",
    )
    end_date: str | None = Field(
        default=None, description="Backfill: up to this ISO date (inclusive, whole day) or datetime (exclusive), UTC."
    )
    batch_size: int | None = Field(
        default=None,
        ge=1,
        description="Records per page; default: the declaration's (its paginator's limit or page_size).",
    )


def parse_window_bound(value: str | None, *, end: bool = False) -> datetime | None:
    """A config date or datetime as an aware UTC datetime; a bare end date covers its whole day."""
    if not value:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            parsed = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return parsed + timedelta(days=1) if end else parsed
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise dg.Failure(f"not an ISO 8601 date or datetime: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FetchedPage:
    """A page from either client, as the landing needs it."""

    number: int
    records: pa.Table
    rejects: tuple[RecordReject, ...]
    cursor: str | None  # what fetched it (the source API's cursor; a declared API's request)
    next_cursor: str | None


def _land_page(
    conn: DuckDBPyConnection, page: FetchedPage, *, run_id: str, seen: PullCursor | None, tables: PullTables
) -> tuple[int, list[str], list[str]]:
    """Conform a page, drop what cursor ``seen`` covers (None: a backfill, which keeps all and
    leaves the cursor alone) and land the rest with the cursor and the page's rejects:
    (rows landed, schema issues, unknown columns). A reject never holds the cursor back: it moves
    with the rows."""
    records, issues = conform(page.records, tables.contract, keep_unknown=tables.keep_unknown)
    unknown = unknown_columns(page.records, tables.contract)
    if seen is not None:
        records = drop_seen(records, seen, tables.contract)
    if records.num_rows == 0 and not page.rejects:
        return 0, issues, unknown
    pull.land_page(
        conn,
        run_id=run_id,
        page_no=page.number,
        page_cursor=page.cursor,
        next_cursor=page.next_cursor,
        records=records,
        schema_issues=issues,
        advance_cursor=seen is not None,
        extracted_at=datetime.now(UTC),
        tables=tables,
        rejects=page.rejects,
    )
    return records.num_rows, issues, unknown


async def extract_pages(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    tables: PullTables,
    pages_from: Callable[[PullCursor | None, PullStats], AsyncGenerator[FetchedPage, None]],
    *,
    memory_limit: str,
    backfill: bool,
) -> dg.MaterializeResult:
    """Land the pages ``pages_from(since, stats)`` yields into ``tables`` (``since``: the stored
    cursor, or None for a backfill, which keeps every record and leaves the cursor alone), each page
    with its cursor in one transaction, while the next page downloads."""
    stats = PullStats()
    landed, issues, unknown = 0, set(), set()
    started = time.perf_counter()
    async with warehouse.async_session(
        duckdb, tables.ddl, setup=partial(pull.limit_memory, limit=memory_limit)
    ) as conn:
        cursor_before = await asyncio.to_thread(pull.read_cursor, conn, tables)
        seen = None if backfill else cursor_before
        full_read = await asyncio.to_thread(pull.begin_full_read, conn) if tables.write == "replace" else None
        pages = pages_from(seen, stats)
        try:
            # aclosing: if landing fails, the prefetched request and the HTTP session end at once.
            async with aclosing(pages):
                async for page in pages:
                    # Conformed and landed in a worker thread while the next page downloads.
                    rows, page_issues, page_unknown = await asyncio.to_thread(
                        _land_page, conn, page, run_id=context.run.run_id, seen=seen, tables=tables
                    )
                    unknown.update(page_unknown)
                    if rows:
                        landed += rows
                        issues.update(page_issues)
                        context.log.info(f"landed page {page.number}: {rows} records ({landed} so far)")
                    if page.rejects:
                        context.log.warning(
                            f"page {page.number}: {len(page.rejects)} record(s) rejected, kept in "
                            f"ingestion.{tables.rejects} (first: {page.rejects[0].reason})"
                        )
        except SourceApiError as error:
            # Pages landed so far stay landed with their cursor; a rerun resumes after them.
            raise dg.Failure(
                description=str(error),
                allow_retries=not isinstance(error, (SourceApiAuthError, RestApiConfigError)),
                metadata={"pages_landed": stats.pages, "retries": stats.retries},
            ) from error
        if full_read is not None:  # read to the end: the load may put this read in place of the final table
            await asyncio.to_thread(pull.complete_full_read, conn, tables, full_read)
        cursor_after = await asyncio.to_thread(pull.read_cursor, conn, tables)
        row_count = await asyncio.to_thread(row_count_metadata, conn, tables.raw)
    if unknown:
        context.log.warning(f"fields not in the contract (not landed): {', '.join(sorted(unknown))}")
    seconds = time.perf_counter() - started
    return dg.MaterializeResult(
        metadata={
            "mode": "full read" if full_read is not None else "backfill" if backfill else "incremental",
            "record_count": dg.MetadataValue.int(landed),
            "pages": dg.MetadataValue.int(stats.pages),
            "retries": dg.MetadataValue.int(stats.retries),
            "records_rejected": dg.MetadataValue.int(stats.rejects),
            "retry_reasons": dg.MetadataValue.json(dict(stats.retry_reasons)),
            "cursor_before": cursor_before.describe(),
            "cursor_after": cursor_after.describe(),
            "bytes_received": dg.MetadataValue.int(stats.bytes),
            "records_per_second": dg.MetadataValue.float(round(landed / seconds, 1) if seconds else 0.0),
            "schema_issues": dg.MetadataValue.json(sorted(issues)),
            "unknown_columns": dg.MetadataValue.json(sorted(unknown)),
            **row_count,
        }
    )


def check_pending(
    duckdb: DuckDBResource, tables: PullTables, *, memory_limit: str, max_age: timedelta
) -> dg.AssetCheckResult:
    """The asset check of what waits to be loaded: a broken contract is an ERROR (it blocks the load)."""
    with warehouse.session(duckdb, tables.ddl) as conn:
        pull.limit_memory(conn, memory_limit)
        summary = pull.pending_summary(conn, tables)
    errors, warnings = assess_extract(summary, now=datetime.now(UTC), max_age=max_age)
    newest = summary["newest_updated_at"]
    metadata: dict[str, Any] = {
        "pending_rows": dg.MetadataValue.int(summary["rows"]),
        "pending_rejects": dg.MetadataValue.int(summary["rejects"]),
        "pending_pages": dg.MetadataValue.int(summary["pages"]),
        "ids_with_several_versions": dg.MetadataValue.int(summary["repeated_ids"]),
        "newest_updated_at": newest.isoformat() if isinstance(newest, datetime) else str(newest or "none"),
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


async def load_pending(
    context: dg.AssetExecutionContext, duckdb: DuckDBResource, tables: PullTables, *, memory_limit: str
) -> dg.MaterializeResult:
    """Upsert (or append) what was extracted since the last load into the final table."""
    async with warehouse.async_session(
        duckdb, tables.ddl, setup=partial(pull.limit_memory, limit=memory_limit)
    ) as conn:
        result = await asyncio.to_thread(pull.upsert_final, conn, tables=tables)
        row_count = await asyncio.to_thread(row_count_metadata, conn, tables.final)
    context.log.info(f"upserted {result.raw_rows} raw rows: {result.inserted} inserted, {result.updated} updated")
    return dg.MaterializeResult(
        metadata={
            "inserted": dg.MetadataValue.int(result.inserted),
            "updated": dg.MetadataValue.int(result.updated),
            "unchanged": dg.MetadataValue.int(result.unchanged),
            "skipped_without_key": dg.MetadataValue.int(result.skipped),
            "raw_rows": dg.MetadataValue.int(result.raw_rows),
            "pages": dg.MetadataValue.int(result.pages),
            "final_rows": dg.MetadataValue.int(result.final_rows),
            **row_count,
        }
    )


def with_page_size(spec: RestApiSourceSpec, page_size: int | None) -> RestApiSourceSpec:
    """``spec`` with ``page_size`` records per page (a run's ``batch_size``), where its paginator sends one."""
    if page_size is None:
        return spec
    paginator = spec.paginator
    field = (
        "limit"
        if getattr(paginator, "limit_param", None)
        else "page_size"
        if getattr(paginator, "page_size_param", None)
        else None
    )
    if field is None:
        raise dg.Failure(f"batch_size: the {paginator.type} paginator of {spec.name!r} sends no page size")
    return spec.model_copy(update={"paginator": paginator.model_copy(update={field: page_size})})


def default_names(name: str) -> dict[str, str]:
    return {
        "extract_asset": f"{name}_extract",
        "check": f"{name}_contract",
        "load_asset": f"{name}_load",
        "job": f"{name}_pull_job",
        "schedule": f"{name}_pull_schedule",
    }


def build_rest_api_source(spec: RestApiSourceSpec) -> dg.Definitions:
    """A declared REST API's extract asset, contract check, load asset, job and schedule: the source
    API's own landing (``extract_pages``, ``check_pending``, ``load_pending``) over its own tables,
    paged by the declarative client. The pull pattern's transport and landing settings (timeouts,
    retries, DuckDB memory cap, staleness) come from the ``source_api`` resource."""
    tables = spec.tables
    names = {**default_names(spec.name), **spec.names.model_dump(exclude_none=True)}
    tags = {KIND_TAG: "rest_api", SOURCE_TAG: spec.name}

    @dg.asset(
        name=names["extract_asset"],
        group_name="pull",
        pool=warehouse.DUCKDB_POOL,
        kinds={"duckdb", "python"},
        description=f"Pages {spec.url} (from its cursor in ingestion.pull_state) into ingestion.{tables.raw}.",
        metadata=table_metadata(tables.raw, tables.raw_columns),
        tags=tags,
    )
    async def extract(
        context: dg.AssetExecutionContext, config: ExtractConfig, source_api: SourceApiResource, duckdb: DuckDBResource
    ) -> dg.MaterializeResult:
        since = parse_window_bound(config.start_date)
        before = parse_window_bound(config.end_date, end=True)
        if spec.incremental is None and (since is not None or before is not None):
            raise dg.Failure(f"{spec.name!r} has no incremental field: it is read whole, without a date window")

        declared = with_page_size(spec, config.batch_size)

        async def pages_from(seen: PullCursor | None, stats: PullStats) -> AsyncGenerator[FetchedPage, None]:
            client = RestApiClient(
                declared, http=source_api.http, stats=stats, table_of=partial(records_table, contract=tables.contract)
            )
            start = seen.value if seen is not None else since
            context.log.info(f"pull of {spec.url} from {start or 'the start'}" + (f" to {before}" if before else ""))
            pages = client.pages(since=pull.cursor_text(start), until=pull.cursor_text(before))
            async with aclosing(pages):
                async for page in pages:
                    following = page.next_request.to_json() if page.next_request else None
                    yield FetchedPage(page.number, page.records, page.rejects, page.request.to_json(), following)

        return await extract_pages(
            context,
            duckdb,
            tables,
            pages_from,
            memory_limit=source_api.duckdb_memory_limit,
            backfill=since is not None or before is not None,
        )

    @dg.asset_check(
        asset=extract,
        name=names["check"],
        blocking=True,
        pool=warehouse.DUCKDB_POOL,
        description="The declared columns and types, nulls in required ones, duplicate records and freshness "
        f"of the rows waiting to be loaded; a break is an ERROR and blocks {names['load_asset']}.",
    )
    def contract_check(duckdb: DuckDBResource, source_api: SourceApiResource) -> dg.AssetCheckResult:
        return check_pending(
            duckdb,
            tables,
            memory_limit=source_api.duckdb_memory_limit,
            max_age=timedelta(hours=source_api.max_staleness_hours),
        )

    @dg.asset(
        name=names["load_asset"],
        group_name="pull",
        deps=[extract],
        pool=warehouse.DUCKDB_POOL,
        kinds={"duckdb"},
        description={
            "merge": f"Upserts the extracted rows into ingestion.{tables.final} by {spec.primary_key} (latest "
            f"{tables.contract.cursor} wins).",
            "append": f"Appends the extracted rows to ingestion.{tables.final}.",
            "replace": f"Replaces ingestion.{tables.final} with the last full read of the source.",
        }[spec.write],
        metadata=table_metadata(tables.final, tables.final_columns),
        tags=tags,
    )
    async def load(
        context: dg.AssetExecutionContext, duckdb: DuckDBResource, source_api: SourceApiResource
    ) -> dg.MaterializeResult:
        return await load_pending(context, duckdb, tables, memory_limit=source_api.duckdb_memory_limit)

    job = dg.define_asset_job(
        names["job"],
        selection=dg.AssetSelection.assets(extract, load),
        description=f"Pull {spec.url}, check it against its contract, land it in ingestion.{tables.final}.",
        tags={**RUN_RETRY_TAGS, **tags},
    )
    schedule = dg.ScheduleDefinition(
        name=names["schedule"],
        job=job,
        cron_schedule=spec.schedule,
        execution_timezone="UTC",
        description=f"{names['job']} on its declared schedule.",
    )
    return dg.Definitions(assets=[extract, load], asset_checks=[contract_check], jobs=[job], schedules=[schedule])
