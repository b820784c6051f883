"""``WebhookSource``: a webhook source declared in a ``defs.yaml``, as a Dagster Component.

The declaration's fields are ``WebhookSourceSpec``'s (``source.py``), so the receiver reads the same
``defs.yaml`` without Dagster. Each instance builds its asset and job (``assets.build_webhook_source``);
``definitions.py`` builds the one ``webhook_pending_sensor`` over every instance's job.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from .assets import build_webhook_source, default_names
from .source import WebhookSourceSpec

SCAFFOLD = """\
# A webhook source: senders POST JSON to /webhook/{source_id} on the receiver.
# Reference: docs/components.md#webhooksource. Secrets are named (an environment variable), never written here.
type: {type_name}

attributes:
  source_id: {source_id}

  # none | standard-webhooks | github | stripe | shopify | slack. A scheme is required of every delivery.
  signature: none
  # secret_env: {secret_env}         # the variable that holds the signing secret (needed with a scheme)
  # tolerance_seconds: 300           # standard-webhooks, stripe, slack: how old a signed timestamp may be

  # Where the event id comes from (the inbox answers a repeated id as a duplicate). Default:
  # webhook-id, X-GitHub-Delivery, X-Shopify-Webhook-Id, then the payload's "id".
  # event_id: {{header: X-Request-Id}}  # or {{json_path: meta.delivery_id}}

  # Top-level keys every payload must have; a payload without one lands in the rejects table.
  required_fields: [timestamp, data]
  # json_schema: schema.json         # a JSON Schema file next to this one: a payload must also match it
  batch_size: 5000                   # payloads landed per transaction
  # table: {table}            # its own ingestion.<table> and <table>_rejects; default: the shared
                                     # ingestion.webhook_data (keyed by source_id) and webhook_rejects
"""


class WebhookSourceScaffolder(dg.Scaffolder):
    """Writes a ``defs.yaml`` that works as written: an unsigned source named after its folder."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        target = Path(request.target_path)
        target.mkdir(parents=True, exist_ok=True)
        source_id = target.name.replace("_", "-")
        text = SCAFFOLD.format(
            type_name=request.type_name,
            source_id=source_id,
            secret_env=f"WEBHOOK_SECRET_{source_id.upper().replace('-', '_')}",
            table=f"{target.name.replace('-', '_').lower()}_events",
        )
        (target / "defs.yaml").write_text(text)


@dg.scaffold_with(WebhookSourceScaffolder)
class WebhookSource(dg.Component, dg.Resolvable, WebhookSourceSpec):
    """A webhook source: its deliveries' signature scheme, event id and contract; lands in
    ingestion.webhook_data (keyed by source), or its own declared table, through its own asset and job."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return self.definitions(folder=context.path)

    def definitions(self, folder: Path | None = None) -> dg.Definitions:
        """The instance's asset and job (also for a declaration from INGEST_SOURCES_FILE, which has no
        load context); ``folder``: where a relative ``json_schema`` is."""
        asset_name, job_name = default_names(self.source_id)
        asset, job = build_webhook_source(
            self,
            asset_name=self.names.asset or asset_name,
            job_name=self.names.job or job_name,
            lands_undeclared=self.lands_undeclared_sources,
            payload_schema=self.payload_schema(folder),
        )
        return dg.Definitions(assets=[asset], jobs=[job])
