"""Push-pattern fixtures: receivers under gunicorn as real processes, on either inbox backend.

Reusable by every push test (receiver and pipeline tests alike):

- ``make_inbox_url(backend)``: a fresh, empty inbox URL: ``"sqlite"`` (a file in tmp) or
  ``"postgres"`` (a new database on the session PostgreSQL).
- ``inbox_url``: parametrized over both backends (test ids ``sqlite`` and ``postgres``).
- ``start_receiver(inbox_url, workers=1, env=None)``: starts ``ingest webhook-receiver`` and
  returns a ``Receiver`` (``.url``, ``.process``, ``.kill()``, ``.restart()``); all are stopped
  at teardown.
- ``dedicated_postgres``: a PostgreSQL server of the test's own, to stop and start at will (the
  session server is shared, so never stop that one).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from postgres_server import PostgresServer

from ingestion_devtools.processes import ManagedProcess, free_port

BACKENDS = ("sqlite", "postgres")


@dataclass
class Receiver:
    """A running ``ingest webhook-receiver`` (gunicorn master + workers in one process group)."""

    url: str
    port: int
    inbox_url: str
    workers: int
    env: dict[str, str]
    log_dir: Path
    process: ManagedProcess = field(init=False)
    _starts: itertools.count = field(default_factory=itertools.count, init=False)

    def start(self, ready_path: str = "/health") -> Receiver:
        n = next(self._starts)
        self.process = ManagedProcess.ingest(
            f"webhook-receiver:{self.port}",
            "webhook-receiver",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--inbox",
            self.inbox_url,
            env=self.env,
            log_path=self.log_dir / f"receiver-{self.port}-{n}.log",
        )
        self.process.start().wait_http(self.url + ready_path, timeout=90)
        return self

    def kill(self) -> None:
        """kill -9 the master and its workers: a crash, nothing gets to clean up."""
        self.process.kill()

    def stop(self) -> None:
        self.process.stop()

    def restart(self) -> Receiver:
        """Start again on the same port and inbox (after kill() or stop())."""
        self.process.stop()
        return self.start()

    def log(self) -> str:
        return self.process.log_tail(200)


class ReceiverLauncher:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[Receiver] = []

    def __call__(
        self, inbox_url: str, *, workers: int = 1, env: dict[str, str] | None = None, ready_path: str = "/health"
    ) -> Receiver:
        port = free_port()
        metrics_dir = self.log_dir / f"metrics-{port}"
        receiver = Receiver(
            url=f"http://127.0.0.1:{port}",
            port=port,
            inbox_url=inbox_url,
            workers=workers,
            env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **(env or {})},
            log_dir=self.log_dir,
        )
        self.started.append(receiver)
        return receiver.start(ready_path)

    def stop_all(self) -> None:
        for receiver in self.started:
            receiver.process.stop()


class InboxUrls:
    """Fresh, empty inboxes: a new SQLite file, or a new database on the session PostgreSQL."""

    def __init__(self, tmp_dir: Path, postgres_url: Callable[[], str]):
        self.tmp_dir = tmp_dir
        self._postgres_url = postgres_url

    def __call__(self, backend: str) -> str:
        name = f"inbox_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            return f"sqlite:///{self.tmp_dir / name}.sqlite3"  # tmp paths are absolute: sqlite:////…
        if backend == "postgres":
            server = self._postgres_url()
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            return server.rsplit("/", 1)[0] + f"/{name}"
        raise ValueError(backend)


@pytest.fixture
def make_inbox_url(tmp_path, request) -> InboxUrls:
    return InboxUrls(tmp_path, lambda: request.getfixturevalue("postgres_url"))


@pytest.fixture(params=BACKENDS)
def inbox_url(request, make_inbox_url) -> str:
    return make_inbox_url(request.param)


@pytest.fixture
def start_receiver(tmp_path) -> Iterator[ReceiverLauncher]:
    launcher = ReceiverLauncher(tmp_path)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def module_receivers(tmp_path_factory) -> Iterator[ReceiverLauncher]:
    """For modules that share receivers across tests (starting gunicorn costs seconds)."""
    launcher = ReceiverLauncher(tmp_path_factory.mktemp("receivers"))
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def module_inbox_urls(tmp_path_factory, request) -> InboxUrls:
    return InboxUrls(tmp_path_factory.mktemp("inboxes"), lambda: request.getfixturevalue("postgres_url"))


@pytest.fixture
def dedicated_postgres() -> Iterator[PostgresServer]:
    # Not under tmp_path: pytest's temp root is private to root, the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="ingest-pg-push-"))
    server = PostgresServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
