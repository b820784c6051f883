"""The resources every definition shares, configured from the settings.

A value that came from the environment is passed as ``dg.EnvVar`` (Dagster resolves it in every
process and never stores it, so secrets stay out of run configs and the UI); a local default or a
value the CLI set (the demo's mock API URL) is passed as it is.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from .alerting.sink import AlertWebhookResource
from .maintenance.resource import RetentionResource
from .poll.client import kafka_resource
from .pull.client import SourceApiResource
from .push.resource import WebhookInboxResource
from .settings import Settings


def setting(settings: Settings, name: str) -> Any:
    """The value of settings field ``name``: ``dg.EnvVar`` when it is the environment's, else the value."""
    value = getattr(settings, name)
    env_name = name.upper()
    if os.environ.get(env_name) == str(value):
        return dg.EnvVar(env_name)
    return str(value) if value is not None else ""


def build_resources(settings: Settings) -> dict[str, Any]:
    """Resource key -> resource, merged into the definitions by ``definitions.py``."""
    return {
        "duckdb": DuckDBResource(database=setting(settings, "duckdb_path")),
        "kafka": kafka_resource(settings, resolve=lambda name: setting(settings, name)),
        "webhook_inbox": WebhookInboxResource(
            url=setting(settings, "webhook_inbox_url"), lease_seconds=settings.webhook_inbox_lease_seconds
        ),
        # Every REST API source's transport and landing settings; where each API is, and its
        # credentials, are in its declaration (the reference source API's: SOURCE_API_URL, SOURCE_API_TOKEN).
        "source_api": SourceApiResource(
            duckdb_memory_limit=settings.pull_duckdb_memory_limit,
            max_staleness_hours=settings.pull_max_staleness_hours,
        ),
        "retention": RetentionResource(
            webhook_inbox_seconds=settings.webhook_inbox_retention, pull_raw_seconds=settings.pull_raw_retention
        ),
        "alerts": AlertWebhookResource(
            url=setting(settings, "alert_webhook_url"),
            ui_url=settings.dagster_ui_url,
            stuck_after_seconds=settings.alert_stuck_after,
        ),
    }
