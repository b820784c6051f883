"""The resources every definition shares, configured from the environment through ``dg.EnvVar``."""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from .api_client import SourceApiResource
from .kafka_consumer import kafka_resource_from_env
from .webhook_inbox import WebhookInboxResource


def build_resources() -> dict[str, object]:
    """Resource key -> resource, merged into the definitions by ``definitions.py``."""
    return {
        "duckdb": DuckDBResource(database=dg.EnvVar("DUCKDB_PATH")),
        "kafka": kafka_resource_from_env(),
        "webhook_inbox": WebhookInboxResource(url=dg.EnvVar("WEBHOOK_INBOX_URL")),
        "source_api": SourceApiResource(base_url=dg.EnvVar("SOURCE_API_URL"), token=dg.EnvVar("SOURCE_API_TOKEN")),
    }
