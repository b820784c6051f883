"""Push pattern: webhooks accepted into the durable inbox land in ``ingestion.webhook_data`` (or
the table a source declares: ``landing.WebhookTables``).

The receiver has already made each payload durable. Here a run claims the pending payloads of one
source, validates them, lands valid ones and rejects in one DuckDB transaction, and only then marks
them done in the inbox: a crash in between replays the batch, and the landing skips the rows it
finds under the batch's own inbox seqs.

Each batch is claimed under a lease owned by the run (its run id): another run never gets the same
rows, and the rows of a run that dies come back when the lease expires, or at once when Dagster
reports that run ended (its retry releases them).

Each declared source (a ``WebhookSource`` instance, ``component.py``) gets its own asset and job from
``build_webhook_source``; ``build_webhook_pending_sensor`` makes the one sensor that serves them all.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from jsonschema.protocols import Validator
from pydantic import Field

from .. import warehouse
from ..dagster_conventions import KIND_TAG, RUN_RETRY_TAGS, SOURCE_TAG, row_count_metadata, table_metadata
from .inbox import Inbox, InboxRecord, InboxUnavailable, PendingSummary
from .landing import DATA_COLUMNS, WebhookLandResult, WebhookTables, land_claimed
from .resource import WebhookInboxResource
from .source import FieldFrom, WebhookSourceSpec
from .validate import split_batch

# The tags a webhook source's job carries: the sensor finds its sources' jobs by them.
UNDECLARED_TAG = "ingestion/lands-undeclared-sources"
ASSET_TAG = "ingestion/asset"  # the asset (op) whose config names the source
# The run tag that names a run's source (alerts read it).
RUN_SOURCE_TAG = "webhook/source_id"


class WebhookBatchConfig(dg.Config):
    source_id: str | None = Field(
        default=None,
        description="The source whose pending payloads to land; default: the asset's own source. Another id "
        "only on the job that lands undeclared sources (local development).",
    )
    validate_schema: bool = Field(
        default=True, description="Reject payloads that lack `required_fields` or carry a bad timestamp."
    )
    required_fields: list[str] | None = Field(
        default=None, description="Top-level keys every payload must have; default: the source's declaration."
    )
    batch_size: int | None = Field(
        default=None, ge=1, description="Payloads claimed and landed per transaction; default: the declaration's."
    )


@dataclass(frozen=True)
class BatchRules:
    """A run's validation rules: its config over its source's declaration (``validate.BatchRules``)."""

    source_id: str
    validate_schema: bool
    required_fields: list[str]
    batch_size: int
    event_type: FieldFrom | None = None  # where the event type comes from; None: the default rules
    payload_schema: Validator | None = None  # the source's declared JSON Schema, if any
    tables: WebhookTables = WebhookTables()  # where the source lands

    @classmethod
    def for_source(cls, source_id: str, *, validate_schema: bool = True) -> "BatchRules":
        """The rules of a source declared with the defaults (an undeclared one)."""
        return cls.of(WebhookBatchConfig(validate_schema=validate_schema), WebhookSourceSpec(source_id=source_id))

    @classmethod
    def of(
        cls, config: WebhookBatchConfig, spec: WebhookSourceSpec, payload_schema: Validator | None = None
    ) -> "BatchRules":
        # Another source id: an undeclared source this job lands (local development), by the default rules.
        own = config.source_id is None or config.source_id == spec.source_id
        declared = spec if config.source_id is None or own else WebhookSourceSpec(source_id=config.source_id)
        return cls(
            source_id=declared.source_id,
            validate_schema=config.validate_schema,
            required_fields=declared.required_fields if config.required_fields is None else config.required_fields,
            batch_size=declared.batch_size if config.batch_size is None else config.batch_size,
            event_type=declared.event_type,
            payload_schema=payload_schema if own else None,
            tables=WebhookTables.named(declared.table),
        )


def default_names(source_id: str) -> tuple[str, str]:
    """The asset and job names of a source: ``<source>_webhooks`` and ``<source>_webhook_job``."""
    stem = source_id.replace("-", "_").replace(".", "_").lower()
    return f"{stem}_webhooks", f"{stem}_webhook_job"


def build_webhook_source(
    spec: WebhookSourceSpec,
    *,
    asset_name: str,
    job_name: str,
    lands_undeclared: bool = False,
    payload_schema: Validator | None = None,
) -> tuple[dg.AssetsDefinition, Any]:
    """The asset that lands ``spec``'s pending payloads, and its job (tagged for the shared sensor)."""
    tables = WebhookTables.named(spec.table)

    @dg.asset(
        name=asset_name,
        group_name="push",
        kinds={"duckdb", "python"},
        pool=warehouse.DUCKDB_POOL,
        description=f"Webhook payloads of source {spec.source_id!r} from the durable inbox, landed in "
        f"ingestion.{tables.data} (invalid ones in ingestion.{tables.rejects})."
        + (" Also lands sources accepted without a declaration (local development)." if lands_undeclared else ""),
        metadata=table_metadata(tables.data, DATA_COLUMNS),
        tags={SOURCE_TAG: spec.source_id},
    )
    async def land_webhooks(
        context: dg.AssetExecutionContext,
        config: WebhookBatchConfig,
        duckdb: DuckDBResource,
        webhook_inbox: WebhookInboxResource,
    ) -> dg.MaterializeResult:
        rules = BatchRules.of(config, spec, payload_schema)
        if rules.source_id != spec.source_id and not lands_undeclared:
            raise dg.Failure(f"{asset_name} lands source {spec.source_id!r} only, not {rules.source_id!r}")
        return await land_pending(context, rules, duckdb, webhook_inbox)

    job = dg.define_asset_job(
        job_name,
        selection=[land_webhooks],
        description=f"Land the pending webhook payloads of source {spec.source_id!r}.",
        # A failed run is retried by the daemon: the sensor's run key for an unchanged inbox position
        # would otherwise never request it again.
        tags={
            **RUN_RETRY_TAGS,
            KIND_TAG: "webhook",
            SOURCE_TAG: spec.source_id,
            ASSET_TAG: asset_name,
            **({UNDECLARED_TAG: "true"} if lands_undeclared else {}),
        },
    )
    return land_webhooks, job


async def land_pending(
    context: dg.AssetExecutionContext, rules: BatchRules, duckdb: DuckDBResource, webhook_inbox: WebhookInboxResource
) -> dg.MaterializeResult:
    """Claim, validate and land what ``rules.source_id`` had pending when the run started."""
    run_id = context.run.run_id  # also the lease owner of every batch this run claims
    lease_seconds = webhook_inbox.lease_seconds
    source_id, tables = rules.source_id, rules.tables
    totals = {"processed": 0, "duplicates": 0, "rejected": 0, "refused": 0, "batches": 0}

    async with webhook_inbox.open() as inbox:
        await _release_leases_of_ended_runs(context, inbox, source_id)
        # Bound the run to what was pending when it started, so a steady stream cannot keep it alive.
        target = (await inbox.pending(source_id)).count
        seen = 0
        async with warehouse.async_session(duckdb, tables.ddl) as conn:
            while seen < target:
                records = await inbox.claim(source_id, rules.batch_size, owner=run_id, lease_seconds=lease_seconds)
                if not records:
                    break  # what is left is leased by a live run
                async with _lease_kept(context, inbox, source_id, records, run_id, lease_seconds):
                    rejected, result = await asyncio.to_thread(_validate_and_land, conn, records, rules, run_id)
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
                        f"ingestion.{tables.rejects} with its reason"
                    )
            counts = await asyncio.to_thread(_table_metadata, conn, tables)
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
            **counts,
        }
    )


def _validate_and_land(
    conn: duckdb.DuckDBPyConnection, records: list[InboxRecord], rules: BatchRules, run_id: str
) -> tuple[int, WebhookLandResult]:
    """In a worker thread: validate the batch and land its rows and rejects in one DuckDB transaction
    (a record DuckDB refuses is isolated and becomes a reject: ``landing.land_claimed``); returns how
    many ended as rejects, and the landing's result."""
    return land_claimed(conn, records, lambda part: split_batch(part, rules), run_id=run_id, tables=rules.tables)


def _table_metadata(conn: duckdb.DuckDBPyConnection, tables: WebhookTables) -> dict[str, Any]:
    return {
        **row_count_metadata(conn, tables.data),
        "rejects_row_count": dg.MetadataValue.int(warehouse.count_rows(conn, tables.rejects)),
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


@dataclass(frozen=True)
class SourceJob:
    """Where the sensor sends a source's pending payloads: the job, and the asset (op) it configures."""

    job_name: str
    op_name: str


def source_jobs(jobs: Sequence[Any]) -> tuple[dict[str, SourceJob], SourceJob | None]:
    """The webhook sources' jobs among ``jobs`` (found by their tags), and the one that lands undeclared sources."""
    routes: dict[str, SourceJob] = {}
    undeclared = None
    for job in jobs:
        tags = getattr(job, "tags", None) or {}
        if tags.get(KIND_TAG) != "webhook":
            continue
        route = routes[tags[SOURCE_TAG]] = SourceJob(job.name, tags[ASSET_TAG])
        if tags.get(UNDECLARED_TAG) == "true":
            undeclared = route
    return routes, undeclared


def build_webhook_pending_sensor(jobs: Sequence[Any]) -> dg.SensorDefinition:
    """``webhook_pending_sensor``: one run per source with pending payloads, of that source's job.

    One sensor for every webhook source (one inbox query per tick, however many sources); a pending
    source no job lands (accepted without a declaration) goes to the job tagged to land undeclared
    sources, and is skipped, with a log line, where there is none."""
    routes, undeclared = source_jobs(jobs)
    targets = [job for job in jobs if getattr(job, "name", None) in {r.job_name for r in routes.values()}]

    @dg.sensor(
        name="webhook_pending_sensor",
        jobs=targets,
        minimum_interval_seconds=10,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests one run per webhook source with pending payloads, of that source's job.",
    )
    def webhook_pending_sensor(
        context: dg.SensorEvaluationContext, webhook_inbox: WebhookInboxResource
    ) -> dg.SensorResult | dg.SkipReason:
        # Sensors are synchronous in Dagster: one short event loop per tick.
        pending = asyncio.run(_pending_sources(webhook_inbox))
        if not pending:
            return dg.SkipReason("no webhook payloads pending in the inbox")
        requests = []
        for summary in pending:
            route = routes.get(summary.source_id, undeclared)
            if route is None:
                context.log.warning(f"webhook source {summary.source_id!r} has pending payloads but no job lands it")
                continue
            requests.append(
                dg.RunRequest(
                    job_name=route.job_name,
                    # The inbox position: a tick that sees the same position requests nothing new.
                    # Leased rows count as pending, so a run that has started does not move it.
                    run_key=f"{summary.source_id}:{summary.max_seq}",
                    run_config=dg.RunConfig(ops={route.op_name: WebhookBatchConfig(source_id=summary.source_id)}),
                    tags={RUN_SOURCE_TAG: summary.source_id, "webhook/pending": str(summary.count)},
                )
            )
        return dg.SensorResult(run_requests=requests)

    return webhook_pending_sensor


async def _pending_sources(webhook_inbox: WebhookInboxResource) -> list[PendingSummary]:
    async with webhook_inbox.open() as inbox:
        return await inbox.pending_sources()
