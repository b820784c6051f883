"""A throw-away PostgreSQL server from Debian's package, for the tests that need a real one."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from ingestion_devtools.processes import free_port


def _bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    pg_ctl = candidates[0] if candidates else shutil.which("pg_ctl")
    if pg_ctl is None:
        pytest.fail("PostgreSQL is not installed: run `bash .ci/install-deps` (Debian's postgresql package)")
    return Path(pg_ctl).resolve().parent


class PostgresServer:
    """initdb into ``root`` and start/stop at will; fsync on, trust auth, loopback only.

    ``root`` must not be under pytest's tmp root: that is private to root, and as root the server
    runs as the ``postgres`` user the package creates (PostgreSQL refuses to run as root).
    """

    def __init__(self, root: Path):
        self.bindir = _bindir()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql://ingest@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data), "-U", "ingest", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bindir / tool), *args], check=True, capture_output=True)

    def start(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.root / "log"),
            "start",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200",
        )

    def stop(self) -> None:
        """An immediate shutdown: connections drop as if the server had died."""
        subprocess.run(
            [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
        )
