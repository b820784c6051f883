"""The code location: everything under ``defs/`` (modules and component instances), the sensors that
serve every instance of a kind, and the shared resources, built from the settings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from .alerting.sensors import build_stuck_source_alert
from .poll.assets import build_kafka_polling_sensor
from .poll.component import KafkaTopicSource
from .poll.source import declarations_in_file as kafka_topics_in_file
from .poll.source import load_kafka_topics
from .pull.component import RestApiSource
from .pull.source import rest_apis_in_file
from .push.assets import build_webhook_pending_sensor
from .push.component import WebhookSource
from .push.source import declarations_in_file, load_webhook_sources, package_defs_folder
from .resources import build_resources
from .settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """The definitions with resources for ``settings`` (the CLI passes its own, e.g. the demo's URLs)."""
    loaded = dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        *declared_in_sources_file(settings),
    )
    # One sensor per kind of source, over every instance's job (docs/architecture.md, "Declared sources"),
    # and the stuck-source alert over all of them.
    jobs = list(loaded.jobs or [])
    return dg.Definitions.merge(
        loaded,
        dg.Definitions(
            sensors=[
                build_webhook_pending_sensor(jobs),
                build_kafka_polling_sensor(jobs),
                build_stuck_source_alert(jobs),
            ],
            resources=build_resources(settings),
        ),
    )


def declared_in_sources_file(settings: Settings) -> list[dg.Definitions]:
    """The instances ``INGEST_SOURCES_FILE`` declares (the chart's ConfigMap), built as their
    ``defs.yaml`` would be; a source both there and in a ``defs.yaml`` is an error (the receiver's too)."""
    if not settings.ingest_sources_file:
        return []
    # Read with the defs.yaml declarations, so a source declared twice is named with both places.
    webhooks = load_webhook_sources(package_defs_folder(), settings.ingest_sources_file)
    in_file = {fields.get("source_id") for _, fields in declarations_in_file(Path(settings.ingest_sources_file))}
    topics = load_kafka_topics(package_defs_folder(), settings.ingest_sources_file)
    topics_in_file = {fields.get("name") for _, fields in kafka_topics_in_file(Path(settings.ingest_sources_file))}
    return (
        [
            WebhookSource.model_validate(spec.model_dump()).definitions(
                folder=Path(settings.ingest_sources_file).parent
            )
            for source_id, spec in webhooks.items()
            if source_id in in_file
        ]
        + [
            KafkaTopicSource.model_validate(spec.model_dump()).definitions()
            for name, spec in topics.items()
            if name in topics_in_file
        ]
        + [
            RestApiSource.model_validate(spec.model_dump()).definitions()
            for spec in rest_apis_in_file(package_defs_folder(), Path(settings.ingest_sources_file))
        ]
    )


@dg.definitions
def defs() -> dg.Definitions:
    # Read once per load; unset settings take the local defaults, so `dg dev` works with no environment.
    return build_definitions(load_settings())
