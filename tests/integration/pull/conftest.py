"""Fixtures of the pull pattern's integration tests: the mock API in its own gunicorn process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pull_helpers import TOKEN, MockApi

from ingestion_patterns.processes import ManagedProcess, free_port


@pytest.fixture
def start_mock_api(tmp_path: Path) -> Iterator[Callable[..., MockApi]]:
    """Start ``ingest mock-api`` with the given flags; every server of a test shares one state file
    unless ``state`` is given, so two servers (say, clean and faulty) serve the same source."""
    started: list[ManagedProcess] = []

    def start(*, records: int = 5000, workers: int = 1, state: Path | None = None, **flags) -> MockApi:
        port = free_port()
        args = ["mock-api", "--port", str(port), "--workers", str(workers), "--records", str(records),
                "--token", TOKEN, "--state", str(state or tmp_path / "mock_api_state.sqlite3")]
        for name, value in flags.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        process = ManagedProcess.ingest(f"mock-api:{port}", *args, log_path=tmp_path / f"mock-api-{port}.log")
        started.append(process.start())
        process.wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
        return MockApi(f"http://127.0.0.1:{port}", TOKEN, process)

    yield start
    for process in started:
        process.stop()


