"""Fixtures of the pull pattern's integration tests: the mock API in its own gunicorn process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pull_helpers import TOKEN, MockApi

from ingestion_devtools.processes import ManagedProcess, free_port


class MockApiLauncher:
    """Starts ``ingest mock-api`` processes; every server started by one launcher shares one state
    file unless ``state`` is given, so two servers (say, clean and faulty) serve the same source."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.started: list[ManagedProcess] = []

    def start(self, *, records: int = 5000, workers: int = 1, state: Path | None = None, **flags) -> MockApi:
        port = free_port()
        args = [
            "mock-api",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--records",
            str(records),
            "--token",
            TOKEN,
            "--state",
            str(state or self.workdir / "mock_api_state.sqlite3"),
        ]
        for name, value in flags.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        process = ManagedProcess.ingest(f"mock-api:{port}", *args, log_path=self.workdir / f"mock-api-{port}.log")
        self.started.append(process.start())
        process.wait_http(f"http://127.0.0.1:{port}/health", timeout=90)
        return MockApi(f"http://127.0.0.1:{port}", TOKEN, process)

    def close(self) -> None:
        for process in self.started:
            process.kill()  # nothing to flush: every admin change is committed to SQLite already


@pytest.fixture
def start_mock_api(tmp_path: Path) -> Iterator[Callable[..., MockApi]]:
    launcher = MockApiLauncher(tmp_path)
    yield launcher.start
    launcher.close()


@pytest.fixture(scope="module")
def shared_mock_api(tmp_path_factory) -> Iterator[MockApi]:
    """One small read-only server for the tests that never change the source."""
    launcher = MockApiLauncher(tmp_path_factory.mktemp("mock-api"))
    yield launcher.start(records=50)
    launcher.close()
