"""Start, wait for and stop the platform's local processes (receiver, mock API, broker, Dagster).

Used by ``ingest demo``/``ingest dev`` and by the integration tests, which run every service as a
real process on loopback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``check`` until it is true, or raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class ManagedProcess:
    """A child process in its own process group, so stop() also reaches gunicorn's workers."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        log_path: str | Path | None = None,
    ):
        self.name = name
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None

    @classmethod
    def ingest(cls, name: str, *cli_args: str, **kwargs) -> ManagedProcess:
        """A process running ``ingest <cli_args>`` with this interpreter."""
        return cls(name, [sys.executable, "-m", "ingestion_patterns.cli", *cli_args], **kwargs)

    def start(self) -> ManagedProcess:
        out: int | IO[bytes] = subprocess.DEVNULL
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=self.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def started(self) -> subprocess.Popen:
        if self.proc is None:
            raise RuntimeError(f"{self.name} was not started")
        return self.proc

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_http(self, url: str, timeout: float = 60) -> ManagedProcess:
        """Wait until ``url`` answers 2xx; fail early (with the log tail) if the process died."""

        def ready() -> bool:
            if not self.running:
                raise RuntimeError(f"{self.name} exited with {self.started.returncode}\n{self.log_tail()}")
            return http_ok(url)

        wait_until(ready, timeout=timeout, what=f"{self.name} at {url}")
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, not a shutdown."""
        self._signal_group(signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the group, then SIGKILL whatever is left after ``timeout``."""
        if not self.running:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.started.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.proc.pid, sig)

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
