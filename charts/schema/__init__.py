"""The charts' values.schema.json, generated from typed models (pydantic v2), as the official Dagster Helm
chart does it: one module of models per chart, one generator for all.

    uv run python -m charts.schema           # write charts/<chart>/values.schema.json for every chart
    uv run python -m charts.schema --check   # exit 1 (with a diff) where a committed schema is stale

Conventions of the models (common.py): a model is a closed object (additionalProperties: false) unless it
derives from OpenObject; a field without a default is required; `X | None = None` is a key that may be left
out (its schema is X's: helm drops keys set to null before validating, so no schema admits null unless it
says so, as Nullable does). Defaults live in values.yaml, never in the models.
"""

from __future__ import annotations

from .generate import CHARTS, render

__all__ = ["CHARTS", "render"]
