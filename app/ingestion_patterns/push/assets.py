"""Push pattern: webhooks accepted into the durable inbox land in ``ingestion.webhook_data``.

The receiver has already made each payload durable. Here a run claims the pending payloads of one
source, validates them, lands valid ones and rejects in one DuckDB transaction, and only then marks
them done in the inbox: a crash in between replays the batch, and the landing skips the rows it
finds under the batch's own inbox seqs.

Each batch is claimed under a lease owned by the run (its run id): another run never gets the same
rows, and the rows of a run that dies come back when the lease expires, or at once when Dagster
reports that run ended (its retry releases them).
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from .. import warehouse
from ..dagster_conventions import RUN_RETRY_TAGS, row_count_metadata, table_metadata
from .inbox import Inbox, InboxRecord, InboxUnavailable, PendingSummary
from .landing import DATA_COLUMNS, DATA_TABLE, DDL, REJECTS_TABLE, WebhookLandResult, land_claimed
from .resource import WebhookInboxResource
from .validate import split_batch


class WebhookBatchConfig(dg.Config):
    source_id: str = Field(default="default", description="The source whose pending payloads to land.")
    validate_schema: bool = Field(
        default=True, description="Reject payloads that lack `required_fields` or carry a bad timestamp."
    )
    required_fields: list[str] = Field(
        default=["timestamp", "data"], description="Top-level keys every payload must have."
    )
    batch_size: int = Field(default=5000, ge=1, description="Payloads claimed and landed per transaction.")


@dg.asset(
    group_name="push",
    kinds={"duckdb", "python"},
    pool=warehouse.DUCKDB_POOL,
    description="Webhook payloads from the durable inbox, landed in ingestion.webhook_data "
    "(invalid ones in ingestion.webhook_rejects).",
    metadata=table_metadata(DATA_TABLE, DATA_COLUMNS),
)
async def process_webhook_data(
    context: dg.AssetExecutionContext,
    config: WebhookBatchConfig,
    duckdb: DuckDBResource,
    webhook_inbox: WebhookInboxResource,
) -> dg.MaterializeResult:
    run_id = context.run.run_id  # also the lease owner of every batch this run claims
    lease_seconds = webhook_inbox.lease_seconds
    source_id = config.source_id
    totals = {"processed": 0, "duplicates": 0, "rejected": 0, "refused": 0, "batches": 0}

    async with webhook_inbox.open() as inbox:
        await _release_leases_of_ended_runs(context, inbox, source_id)
        # Bound the run to what was pending when it started, so a steady stream cannot keep it alive.
        target = (await inbox.pending(source_id)).count
        seen = 0
        async with warehouse.async_session(duckdb, DDL) as conn:
            while seen < target:
                records = await inbox.claim(source_id, config.batch_size, owner=run_id, lease_seconds=lease_seconds)
                if not records:
                    break  # what is left is leased by a live run
                async with _lease_kept(context, inbox, source_id, records, run_id, lease_seconds):
                    rejected, result = await asyncio.to_thread(_validate_and_land, conn, records, config, run_id)
                # Only after the DuckDB commit: a crash before this line replays the batch harmlessly.
                await inbox.mark_done(source_id, [r.seq for r in records], owner=run_id)
                seen += len(records)
                totals["processed"] += result.inserted
                totals["duplicates"] += result.already_landed
                totals["rejected"] += rejected
                totals["refused"] += result.refused
                totals["batches"] += 1
                context.log.info(
                    f"landed batch of {len(records)} from {source_id}: {result.inserted} new, "
                    f"{result.rejected} rejected, {result.already_landed} already landed"
                )
                if result.refused:
                    context.log.warning(
                        f"DuckDB refused {result.refused} payload(s) of this batch; they are in "
                        f"ingestion.{REJECTS_TABLE} with its reason"
                    )
            tables = await asyncio.to_thread(_table_metadata, conn)
        still_pending = (await inbox.pending(source_id)).count

    return dg.MaterializeResult(
        metadata={
            "source_id": source_id,
            "processed": totals["processed"],
            "duplicates": totals["duplicates"],
            "rejected": totals["rejected"],
            "refused_by_warehouse": totals["refused"],
            "batches": totals["batches"],
            "still_pending": still_pending,
            **tables,
        }
    )


def _validate_and_land(
    conn: duckdb.DuckDBPyConnection, records: list[InboxRecord], config: WebhookBatchConfig, run_id: str
) -> tuple[int, WebhookLandResult]:
    """In a worker thread: validate the batch and land its rows and rejects in one DuckDB transaction
    (a record DuckDB refuses is isolated and becomes a reject: ``landing.land_claimed``); returns how
    many ended as rejects, and the landing's result."""
    return land_claimed(conn, records, lambda part: split_batch(part, config), run_id=run_id)


def _table_metadata(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    return {
        **row_count_metadata(conn, DATA_TABLE),
        "rejects_row_count": dg.MetadataValue.int(warehouse.count_rows(conn, REJECTS_TABLE)),
    }


async def _release_leases_of_ended_runs(context: dg.AssetExecutionContext, inbox: Inbox, source_id: str) -> None:
    """Give back at once the rows a run that has ended still leases (it died mid-batch): run
    monitoring marks a dead run failed and its retry lands here, instead of waiting out the lease.
    An owner that is no run of this instance keeps its lease until it expires."""
    for lease in await inbox.leases(source_id):
        if lease.owner == context.run.run_id:
            ended = True  # an earlier attempt of this very step
        else:
            run = context.instance.get_run_by_id(lease.owner)
            ended = run is not None and run.is_finished
        if ended:
            released = await inbox.release(source_id, lease.owner)
            context.log.warning(f"gave back {released} inbox rows leased by run {lease.owner}, which has ended")


@asynccontextmanager
async def _lease_kept(
    context: dg.AssetExecutionContext,
    inbox: Inbox,
    source_id: str,
    records: list[InboxRecord],
    owner: str,
    lease_seconds: float,
) -> AsyncIterator[None]:
    """Renew the batch's lease every third of its length while the body runs, so a slow landing
    (a large batch, a busy disk) keeps its rows instead of racing another claimer for them."""
    seqs = [record.seq for record in records]

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease_seconds / 3)
            try:
                renewed = await inbox.renew(source_id, seqs, owner=owner, lease_seconds=lease_seconds)
            except InboxUnavailable as error:  # the landing goes on; the lease may still hold
                context.log.warning(f"could not renew the lease of {len(seqs)} inbox rows: {error}")
                continue
            if renewed < len(seqs):  # harmless: landing is idempotent, another run re-lands them
                context.log.warning(f"{len(seqs) - renewed} inbox rows of this batch were leased by another run")

    renewing = asyncio.create_task(renew())
    try:
        yield
    finally:
        renewing.cancel()
        try:
            await renewing
        except asyncio.CancelledError:
            step = asyncio.current_task()
            if step is not None and step.cancelling():  # the step itself is being cancelled
                raise


webhook_ingestion_job = dg.define_asset_job(
    "webhook_ingestion_job",
    selection=[process_webhook_data],
    description="Land the pending webhook payloads of one source.",
    # A failed run is retried by the daemon: the sensor's run key for an unchanged inbox position
    # would otherwise never request it again.
    tags=RUN_RETRY_TAGS,
)


@dg.sensor(
    job=webhook_ingestion_job,
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests one run per source with pending webhook payloads.",
)
def webhook_pending_sensor(
    context: dg.SensorEvaluationContext, webhook_inbox: WebhookInboxResource
) -> dg.SensorResult | dg.SkipReason:
    # Sensors are synchronous in Dagster: one short event loop per tick.
    pending = asyncio.run(_pending_sources(webhook_inbox))
    if not pending:
        return dg.SkipReason("no webhook payloads pending in the inbox")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                # The inbox position: a tick that sees the same position requests nothing new. Leased
                # rows count as pending, so a run that has started does not move it.
                run_key=f"{summary.source_id}:{summary.max_seq}",
                run_config=dg.RunConfig(ops={"process_webhook_data": WebhookBatchConfig(source_id=summary.source_id)}),
                tags={"webhook/source_id": summary.source_id, "webhook/pending": str(summary.count)},
            )
            for summary in pending
        ]
    )


async def _pending_sources(webhook_inbox: WebhookInboxResource) -> list[PendingSummary]:
    async with webhook_inbox.open() as inbox:
        return await inbox.pending_sources()
