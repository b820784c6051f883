"""Push pattern: webhooks accepted into the durable inbox land in ``ingestion.webhook_data``.

The receiver has already made each payload durable. Here a run claims the pending payloads of one
source, validates them, lands valid ones and rejects in one DuckDB transaction, and only then marks
them done in the inbox: a crash in between replays the batch, and the primary key absorbs it.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from .. import warehouse
from .resource import WebhookInboxResource
from .inbox import Inbox
from .landing import DDL, land_webhook_batch
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
)
def process_webhook_data(
    context: dg.AssetExecutionContext,
    config: WebhookBatchConfig,
    duckdb: DuckDBResource,
    webhook_inbox: WebhookInboxResource,
) -> dg.MaterializeResult:
    totals = {"processed": 0, "duplicates": 0, "rejected": 0, "batches": 0}

    async def land_pending(inbox: Inbox) -> int:
        # Bound the run to what was pending when it started, so a steady stream cannot keep it alive.
        target = (await inbox.pending(config.source_id)).count
        seen = 0
        with warehouse.session(duckdb, DDL) as conn:
            while seen < target:
                records = await inbox.claim(config.source_id, config.batch_size)
                if not records:
                    break
                rows, rejects = split_batch(records, config)
                result = land_webhook_batch(conn, rows, rejects, run_id=context.run.run_id)
                # Only after the DuckDB commit: a crash before this line replays the batch harmlessly.
                await inbox.mark_done(config.source_id, [r.seq for r in records])
                seen += len(records)
                totals["processed"] += len(rows) - result.already_landed
                totals["duplicates"] += result.already_landed
                totals["rejected"] += len(rejects)
                totals["batches"] += 1
                context.log.info(
                    f"landed batch of {len(records)} from {config.source_id}: {result.inserted} new, "
                    f"{result.rejected} rejected, {result.already_landed} already landed"
                )
        return (await inbox.pending(config.source_id)).count

    still_pending = webhook_inbox.run(land_pending)
    return dg.MaterializeResult(
        metadata={
            "source_id": config.source_id,
            "processed": totals["processed"],
            "duplicates": totals["duplicates"],
            "rejected": totals["rejected"],
            "batches": totals["batches"],
            "still_pending": still_pending,
        }
    )


webhook_ingestion_job = dg.define_asset_job(
    "webhook_ingestion_job",
    selection=[process_webhook_data],
    description="Land the pending webhook payloads of one source.",
    # A failed run is retried by the daemon: the sensor's run key for an unchanged inbox position
    # would otherwise never request it again.
    tags={"dagster/max_retries": "3", "dagster/retry_strategy": "FROM_FAILURE"},
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
    pending = webhook_inbox.pending_sources()
    if not pending:
        return dg.SkipReason("no webhook payloads pending in the inbox")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                # The inbox position: a tick that sees the same position requests nothing new.
                run_key=f"{summary.source_id}:{summary.max_seq}",
                run_config=dg.RunConfig(ops={"process_webhook_data": WebhookBatchConfig(source_id=summary.source_id)}),
                tags={"webhook/source_id": summary.source_id, "webhook/pending": str(summary.count)},
            )
            for summary in pending
        ]
    )
