"""The code location: everything under ``defs/`` plus the shared resources, built from the settings."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from .resources import build_resources
from .settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """The definitions with resources for ``settings`` (the CLI passes its own, e.g. the demo's URLs)."""
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources=build_resources(settings)),
    )


@dg.definitions
def defs() -> dg.Definitions:
    # Read once per load; unset settings take the local defaults, so `dg dev` works with no environment.
    return build_definitions(load_settings())
