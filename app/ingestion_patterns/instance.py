"""The local Dagster instance: DAGSTER_HOME with the project's dagster.yaml in it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .settings import Settings, load_settings

INSTANCE_YAML = Path(__file__).with_name("dagster.yaml")


def prepare_dagster_home(home: str | Path | None = None, settings: Settings | None = None) -> Path:
    """Create DAGSTER_HOME (default ``$DAGSTER_HOME`` or ``INGEST_DATA_DIR/dagster``) holding our dagster.yaml.

    An existing dagster.yaml is kept (it may be the user's own); a missing one is copied in. The
    caller opens the instance from the returned folder, or hands it to a child as DAGSTER_HOME.
    """
    if home is None:
        home = os.environ.get("DAGSTER_HOME") or (settings or load_settings()).ingest_data_dir / "dagster"
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        shutil.copyfile(INSTANCE_YAML, target)
    _set_duckdb_pool_limit(home)
    return home


def _set_duckdb_pool_limit(home: Path) -> None:
    """Give the duckdb pool its one slot now, before any run.

    Left to ``default_limit``, the pool is created by the first step that claims it; two runs
    starting together can both create it, and then both get a slot.
    """
    import dagster as dg

    from .warehouse import DUCKDB_POOL

    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        if not any(p.name == DUCKDB_POOL and p.limit == 1 and not p.from_default for p in storage.get_pool_limits()):
            storage.set_concurrency_slots(DUCKDB_POOL, 1)
