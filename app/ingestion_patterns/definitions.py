"""The code location: everything under ``defs/`` (modules and component instances), the sensors that
serve every instance of a kind, and the shared resources, built from the settings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from .push.assets import build_webhook_pending_sensor
from .resources import build_resources
from .settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """The definitions with resources for ``settings`` (the CLI passes its own, e.g. the demo's URLs)."""
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    # One sensor per kind of source, over every instance's job (docs/architecture.md, "Declared sources").
    jobs = list(loaded.jobs or [])
    return dg.Definitions.merge(
        loaded,
        dg.Definitions(sensors=[build_webhook_pending_sensor(jobs)], resources=build_resources(settings)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    # Read once per load; unset settings take the local defaults, so `dg dev` works with no environment.
    return build_definitions(load_settings())
