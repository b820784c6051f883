"""The code location: everything under ``defs/`` plus the shared resources."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from . import settings
from .resources import build_resources

# Unset settings fall back to the local defaults, so `dg dev` works with no environment at all.
settings.apply_defaults()


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources=build_resources()),
    )
