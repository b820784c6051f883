"""The local Dagster instance: DAGSTER_HOME with the project's dagster.yaml in it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from . import settings

INSTANCE_YAML = Path(__file__).with_name("dagster.yaml")


def prepare_dagster_home(home: str | Path | None = None) -> Path:
    """Create DAGSTER_HOME (default ``$DAGSTER_HOME`` or ``data/dagster``) holding our dagster.yaml.

    An existing dagster.yaml is kept (it may be the user's own); a missing one is copied in.
    Sets DAGSTER_HOME for this process and its children.
    """
    home = Path(home or os.environ.get("DAGSTER_HOME") or settings.DATA_DIR / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        shutil.copyfile(INSTANCE_YAML, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
