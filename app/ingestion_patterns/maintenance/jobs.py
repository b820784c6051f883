"""``retention_job``: the hourly deletions of ``maintenance/`` and what each store holds afterwards.

Two independent ops, so the multiprocess executor runs them side by side:

- ``purge_webhook_inbox`` deletes landed inbox rows past ``WEBHOOK_INBOX_RETENTION``, a batch per
  transaction (the receiver's group commits wait one batch at most). It takes no DuckDB slot.
- ``purge_warehouse`` deletes loaded raw pages past ``PULL_RAW_RETENTION`` (of every pulled source:
  ``raw_extract`` and each REST API's ``<name>_raw``), landed poll plans and
  the later copies of webhook events re-sent after the inbox forgot them, in the ``duckdb`` pool like every DuckDB writer, so it queues behind a landing run instead of racing it.

Each op's output metadata says what it removed (rows per store) and what is left; the sizes are also
recorded as observations of the assets the stores belong to (``process_webhook_data`` for the
inbox, ``extract_source_data`` for raw_extract, ``poll_kafka_events`` for the poll plan), so they
show on those assets' pages beside their materializations.

Ops, not assets: retention produces no data, and the asset graph shows what the platform lands.
"""

import time
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from .. import warehouse
from ..push.resource import WebhookInboxResource
from .resource import RetentionResource
from .warehouse_retention import (
    PAGES_TABLE,
    dedupe_webhook_data,
    existing_tables,
    file_bytes,
    purge_landed_poll_plans,
    purge_loaded_raw_pages,
)

# The assets whose stores retention trims: their pages show the sizes after each purge.
INBOX_ASSET = dg.AssetKey("process_webhook_data")
RAW_ASSET = dg.AssetKey("extract_source_data")
PLAN_ASSET = dg.AssetKey("poll_kafka_events")


@dg.op(
    out=dg.Out(dg.Nothing),
    description="Delete webhook inbox rows landed longer ago than WEBHOOK_INBOX_RETENTION, in small batches.",
    tags={"retention/store": "webhook_inbox"},
)
async def purge_webhook_inbox(
    context: dg.OpExecutionContext, webhook_inbox: WebhookInboxResource, retention: RetentionResource
) -> dg.Output:
    started = time.monotonic()
    async with webhook_inbox.open() as inbox:
        purged = await inbox.purge_done(retention.webhook_inbox_seconds, batch_rows=retention.inbox_batch_rows)
        sizes = await inbox.sizes()
    seconds = time.monotonic() - started
    context.log.info(
        f"webhook inbox: deleted {purged.deleted} rows landed more than {retention.webhook_inbox_seconds:.0f} s ago "
        f"in {purged.batches} batches ({seconds:.1f} s); {sizes.total} rows left ({sizes.done} done, "
        f"{sizes.pending} pending)"
    )
    figures: dict[str, Any] = {
        "inbox_rows_total": sizes.total,
        "inbox_rows_done": sizes.done,
        "inbox_rows_pending": sizes.pending,
    }
    if sizes.storage_bytes is not None:
        figures["inbox_storage_bytes"] = sizes.storage_bytes
    context.log_event(dg.AssetObservation(asset_key=INBOX_ASSET, metadata=figures))
    return dg.Output(
        None,
        metadata={
            "webhook_inbox_rows_deleted": purged.deleted,
            "batches": purged.batches,
            "retention_seconds": retention.webhook_inbox_seconds,
            "duration_seconds": round(seconds, 3),
            **figures,
        },
    )


@dg.op(
    out=dg.Out(dg.Nothing),
    pool=warehouse.DUCKDB_POOL,
    description="Delete raw pages (raw_extract, each REST API's <name>_raw) loaded longer ago than PULL_RAW_RETENTION, poll "
    "plans that have landed and the later copies of re-sent webhook events; report every table's row count.",
    tags={"retention/store": "duckdb"},
)
def purge_warehouse(context: dg.OpExecutionContext, duckdb: DuckDBResource, retention: RetentionResource) -> dg.Output:
    with warehouse.session(duckdb) as conn:
        raw = purge_loaded_raw_pages(conn, retention.pull_raw_seconds, pages_per_batch=retention.pull_batch_pages)
        plans = purge_landed_poll_plans(conn)
        webhook_copies = dedupe_webhook_data(conn)
        counts = warehouse.table_counts(conn)
        tables = existing_tables(conn)
    context.log.info(
        f"warehouse: deleted {raw.raw_rows} raw rows of pulled sources ({raw.pages} pages) loaded more than "
        f"{retention.pull_raw_seconds:.0f} s ago, {plans} landed poll plan rows and {webhook_copies} later "
        "copies of re-sent webhook events"
    )
    if {"raw_extract", PAGES_TABLE} <= tables:
        context.log_event(
            dg.AssetObservation(
                asset_key=RAW_ASSET,
                metadata={
                    "dagster/row_count": counts["raw_extract"],
                    "pull_pages_row_count": counts[PAGES_TABLE],
                    "raw_rows_deleted": raw.raw_rows,
                },
            )
        )
    if "kafka_poll_plan" in tables:
        context.log_event(
            dg.AssetObservation(
                asset_key=PLAN_ASSET,
                metadata={"dagster/row_count": counts["kafka_poll_plan"], "plan_rows_deleted": plans},
            )
        )
    return dg.Output(
        None,
        metadata={
            "raw_rows_deleted": raw.raw_rows,  # every pulled source's: raw_extract and each <name>_raw
            "raw_pages_deleted": raw.pages,
            "kafka_poll_plan_rows_deleted": plans,
            "webhook_data_copies_deleted": webhook_copies,
            "retention_seconds": retention.pull_raw_seconds,
            "duckdb_file_bytes": file_bytes(duckdb.database),
            "row_counts": dg.MetadataValue.json(counts),
        },
    )


@dg.job(
    name="retention_job",
    description="Delete what retention allows: landed webhook inbox rows, loaded raw pages, landed poll plans; "
    "dedupe webhook events re-sent after the inbox's window.",
    tags={"retention": "true"},
)
def retention_job() -> None:
    purge_webhook_inbox()
    purge_warehouse()


retention_schedule = dg.ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    # Hourly, a quarter past: off the hour, where the daily pull starts and takes the DuckDB slot.
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="retention_job every hour, so the inbox and the staging tables stay bounded.",
)
