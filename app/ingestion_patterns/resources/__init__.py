"""The resources every definition shares, configured from the environment through ``dg.EnvVar``."""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource


def build_resources() -> dict[str, object]:
    """Resource key -> resource, merged into the definitions by ``definitions.py``."""
    return {
        "duckdb": DuckDBResource(database=dg.EnvVar("DUCKDB_PATH")),
    }
