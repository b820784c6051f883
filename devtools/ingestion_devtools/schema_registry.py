"""A local Apicurio Registry (the Strimzi world's schema registry), from its distribution on Maven Central.

Apicurio publishes each release's runnable Quarkus application as ``io.apicurio:apicurio-registry-app``
with the classifier ``all`` (a ``tar.gz``). It is fetched once with Maven (``dependency:copy``, as the
Kafka broker's jars are) and unpacked under ``$XDG_CACHE_HOME/ingestion-patterns/apicurio/<version>/``,
then run on the machine's Java with the SQL storage on H2: a file database in the data folder by default,
so ``ingest registry down`` then ``up`` keeps every schema id (a topic's messages carry them), or in memory
with ``in_memory=True``. Its Confluent-compatible REST API, which the poll pattern's Avro decoder uses, is at
``<url>/apis/ccompat/v7``.

Version 3.0.9 is the default: the 3.1+ releases are compiled for Java 21 (class file version 65) and the
machines' Java is 17 (Debian 12's OpenJDK), which refuses them at start-up (UnsupportedClassVersionError).
``INGEST_APICURIO_VERSION`` picks another where Java 21 runs. ``python -m ingestion_devtools.schema_registry
fetch`` only downloads it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .kafka_broker import _signal_group, _tail, java_executable
from .processes import ManagedProcess, http_ok, wait_until

APICURIO_VERSION = os.environ.get("INGEST_APICURIO_VERSION", "3.0.9")
DEFAULT_PORT = 8081
PID_FILE = "registry.pid"
CCOMPAT_PATH = "/apis/ccompat/v7"
_ARTIFACT = "io.apicurio:apicurio-registry-app:{version}:tar.gz:all"


class RegistryError(RuntimeError):
    """The registry could not be fetched or started; the message says why."""


def cache_dir(version: str = APICURIO_VERSION) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ingestion-patterns" / "apicurio" / version


def _runner(app: Path) -> Path | None:
    # 3.0.x ships a legacy jar (``*-runner.jar`` beside ``lib/``), 3.1+ Quarkus's fast-jar (``quarkus-run.jar``).
    for candidate in (app / "quarkus-run.jar", *sorted(app.glob("*-runner.jar"))):
        if candidate.exists():
            return candidate
    return None


def ensure_app(version: str = APICURIO_VERSION) -> Path:
    """The registry's runnable jar, downloading and unpacking its distribution with Maven on first use."""
    root = cache_dir(version)
    app = root / "app"
    if (root / "app.complete").exists() and (runner := _runner(app)):
        return runner
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RegistryError("Apache Maven (`mvn`) is needed once to fetch Apicurio Registry (apt-get install maven)")
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:  # one download at a time per version, across processes
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "app.complete").exists() and (runner := _runner(app)):
            return runner
        with tempfile.TemporaryDirectory(dir=root) as work:
            work_path = Path(work)
            artifact = _ARTIFACT.format(version=version)
            result = subprocess.run(
                [mvn, "-B", "-q", "dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={work_path}"],
                cwd=work_path,
                capture_output=True,
                text=True,
            )
            archives = list(work_path.glob("*.tar.gz"))
            if result.returncode != 0 or not archives:
                raise RegistryError(f"mvn could not fetch {artifact}:\n{result.stdout[-4000:]}{result.stderr[-2000:]}")
            unpacked = work_path / "app"
            with tarfile.open(archives[0]) as archive:
                archive.extractall(unpacked, filter="data")
            if _runner(unpacked) is None:
                raise RegistryError(f"{artifact} holds neither quarkus-run.jar nor a *-runner.jar")
            shutil.rmtree(app, ignore_errors=True)
            unpacked.rename(app)
        (root / "app.complete").write_text(f"{version}\n")
    runner = _runner(app)
    assert runner is not None
    return runner


@dataclass
class Registry:
    """A running (or once running) local registry: its process id, port and data folder."""

    pid: int
    port: int
    data_dir: Path
    process: ManagedProcess | None = None  # set when this Python process started it
    host: str = "127.0.0.1"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "registry.log"

    @property
    def url(self) -> str:
        """The registry's base URL (its own API is under /apis/registry/v3, the UI's config at /)."""
        return f"http://{self.host}:{self.port}"

    @property
    def ccompat_url(self) -> str:
        """The Confluent-compatible API: what Avro serializers and the poll pattern's decoder talk to."""
        return self.url + CCOMPAT_PATH

    @property
    def running(self) -> bool:
        return self.process.running if self.process is not None else _is_registry_pid(self.pid)

    def answering(self) -> bool:
        return http_ok(f"{self.url}/health/ready") and http_ok(f"{self.ccompat_url}/subjects")

    def wait_ready(self, timeout: float = 120) -> Registry:
        def ready() -> bool:
            if not self.running:
                raise RegistryError(
                    f"Apicurio Registry exited during start-up; log {self.log_path}:\n{_tail(self.log_path)}"
                )
            return self.answering()

        wait_until(ready, timeout=timeout, what=f"Apicurio Registry at {self.url}", interval=0.25)
        return self

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to its process group (Quarkus shuts down gracefully), SIGKILL if it outlives ``timeout``."""
        if self.running:
            _signal_group(self.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                wait_until(lambda: not self.running, timeout=timeout, what="registry shutdown")
            if self.running:
                _signal_group(self.pid, signal.SIGKILL)
            if self.process is not None:
                self.process.started.wait()  # reap it
        _remove_pid_file(self.data_dir, self.pid)


def start_registry(
    port: int = DEFAULT_PORT,
    data_dir: str | Path = "data/registry",
    *,
    heap: str = "384m",
    in_memory: bool = False,
    version: str = APICURIO_VERSION,
    wait: bool = True,
    timeout: float = 120,
) -> Registry:
    """Start Apicurio Registry on 127.0.0.1:``port``; its H2 database in ``data_dir`` (or in memory).

    Writes ``<data_dir>/registry.pid`` ("pid port") and logs to ``<data_dir>/registry.log``. Returns once the Confluent-compatible API answers,
    unless ``wait`` is false. The registry runs in its own process group and outlives this Python
    process unless stopped.
    """
    data_dir = Path(data_dir).resolve()
    if existing := read_pid_file(data_dir):
        raise RegistryError(f"a registry already runs on this data folder (pid {existing.pid}, port {existing.port})")
    if (java := java_executable()) is None:
        raise RegistryError("Java is not installed (Apicurio Registry needs Java 17 or newer)")
    runner = ensure_app(version)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "registry.log"
    database = "jdbc:h2:mem:registry" if in_memory else f"jdbc:h2:file:{data_dir / 'registry'}"
    log_path.write_text("")
    process = ManagedProcess(
        "apicurio-registry",
        [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # starts in about half the time; the registry is no hot path here
            "-Djava.awt.headless=true",
            "-Dingest.role=apicurio-registry",  # how _is_registry_pid recognises it
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={port}",
            f"-Dapicurio.datasource.url={database}",
            "-Dapicurio.datasource.jdbc.initial-size=2",
            "-Dapicurio.datasource.jdbc.min-size=2",
            "-Dquarkus.log.level=INFO",
            "-jar",
            str(runner),
        ],
        cwd=data_dir,
        log_path=log_path,
    ).start()
    (data_dir / PID_FILE).write_text(f"{process.started.pid} {port}\n")
    registry = Registry(pid=process.started.pid, port=port, data_dir=data_dir, process=process)
    if wait:
        try:
            registry.wait_ready(timeout)
        except BaseException:
            process.kill()
            _remove_pid_file(data_dir, process.started.pid)
            raise
    return registry


def read_pid_file(data_dir: str | Path) -> Registry | None:
    """The registry recorded in ``data_dir``'s pid file ("pid port") if it still runs (a stale file is removed)."""
    data_dir = Path(data_dir).resolve()
    recorded = _recorded(data_dir)
    if recorded is not None and _is_registry_pid(recorded[0]):
        return Registry(pid=recorded[0], port=recorded[1], data_dir=data_dir)
    (data_dir / PID_FILE).unlink(missing_ok=True)
    return None


def status(data_dir: str | Path) -> dict[str, object]:
    """What ``ingest registry status`` shows: running or not, pid, URLs, answering."""
    registry = read_pid_file(data_dir)
    if registry is None:
        return {"running": False, "data_dir": str(Path(data_dir).resolve())}
    described = {k: getattr(registry, k) for k in ("pid", "url", "ccompat_url", "data_dir", "log_path")}
    return {"running": True, "answering": registry.answering(), **{k: str(v) for k, v in described.items()}}


async def register_schema(ccompat_url: str, subject: str, schema: dict | str, timeout: float = 30) -> int:
    """Register an Avro ``schema`` under ``subject`` (POST /subjects/{subject}/versions); returns its id.

    Registering a schema the subject already holds returns the same id (the registry deduplicates)."""
    import aiohttp

    text = schema if isinstance(schema, str) else json.dumps(schema, separators=(",", ":"))
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.post(
            f"{ccompat_url.rstrip('/')}/subjects/{subject}/versions",
            data=json.dumps({"schema": text, "schemaType": "AVRO"}),
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        ) as response,
    ):
        body = await response.text()
        if response.status != 200:
            raise RegistryError(f"registering a schema under {subject!r} failed: HTTP {response.status} {body[:500]}")
        return int(json.loads(body)["id"])


def _is_registry_pid(pid: int) -> bool:
    # The pid must still be this registry's JVM: guards against a recycled pid after a reboot or crash.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return b"-Dingest.role=apicurio-registry" in cmdline and state != "Z"


def _recorded(data_dir: Path) -> tuple[int, int] | None:
    try:
        pid, port = (int(word) for word in (data_dir / PID_FILE).read_text().split())
    except (OSError, ValueError):
        return None
    return pid, port


def _remove_pid_file(data_dir: Path, pid: int) -> None:
    recorded = _recorded(data_dir)
    if recorded is not None and recorded[0] == pid:
        (data_dir / PID_FILE).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingestion_devtools.schema_registry", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download (and cache) the registry only")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        started = time.monotonic()
        runner = ensure_app()
        print(f"Apicurio Registry {APICURIO_VERSION}: {runner} ({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
