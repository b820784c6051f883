"""The project as a user drives it with ``dg``: commands run in ``app/``, and component instances
scaffolded into its ``defs/`` for a test (removed afterwards)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingestion_devtools.processes import ManagedProcess, wait_until
from ingestion_patterns.declarations import package_defs_folder

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


def group_gone(pgid: int) -> bool:
    """Whether every process of the group is gone (a killed job's step runs in a child process, which
    holds the DuckDB file's lock until it exits)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def kill_job_midway(
    job: str, *, env: dict[str, str], tmp_path: Path, after: str, run_config: Path | None = None
) -> None:
    """``dagster job execute`` of the code location's ``job`` in its own process group (with ``env``
    and a fresh DAGSTER_HOME), SIGKILLed as soon as its log shows ``after``: a crash mid-run. Returns
    once every process of the group is gone, so what it committed can be read."""
    command = [str(Path(sys.executable).parent / "dagster"), "job", "execute", "-m", "ingestion_patterns.definitions"]
    command += ["-j", job, *(["-c", str(run_config)] if run_config else [])]
    process = ManagedProcess(
        job, command, env={"DAGSTER_HOME": str(dagster_home(tmp_path)), **env}, log_path=tmp_path / f"{job}.log"
    ).start()
    kill_when(process, after)


def kill_when(process: ManagedProcess, after: str, *, timeout: float = 240, interval: float = 0.1) -> None:
    """SIGKILL ``process``'s whole group as soon as its log shows ``after`` (it must still be running
    then: a crash mid-run), and wait until every process of the group is gone."""
    try:
        wait_until(
            lambda: after in process.log_tail(400) or not process.running,
            timeout=timeout,
            what=f"{after!r} in the log",
            interval=interval,
        )
        assert process.running, f"the run ended before it could be killed:\n{process.log_tail()}"
    finally:
        process.kill()  # SIGKILL to the whole process group: the run and its step processes
    wait_until(lambda: group_gone(process.proc.pid), timeout=30, what="the killed run's processes to exit")
