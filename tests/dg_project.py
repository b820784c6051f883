"""The project as a user drives it with ``dg``: commands run in ``app/``, and component instances
scaffolded into its ``defs/`` for a test (removed afterwards)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingestion_patterns.push.source import package_defs_folder

APP = Path(__file__).resolve().parents[1] / "app"


def dg_command(*args: str) -> subprocess.CompletedProcess:
    dg_bin = Path(sys.executable).with_name("dg")
    return subprocess.run([str(dg_bin), *args], cwd=APP, capture_output=True, text=True, timeout=300)


@contextmanager
def scaffolded_instance(component_type: str, folder: str, prefix: str) -> Iterator[tuple[str, Path]]:
    """``dg scaffold defs <component_type> <folder>/<prefix>_<random>``: the instance's folder name and path."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    path = package_defs_folder() / folder / name
    try:
        done = dg_command("scaffold", "defs", component_type, f"{folder}/{name}")
        assert done.returncode == 0, done.stderr
        yield name, path
    finally:
        shutil.rmtree(path, ignore_errors=True)
