"""Fixtures shared by every tier: a real PostgreSQL server, started for the test session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from postgres_server import PostgresServer

# Property-based tests: a fixed budget in `make test` ("ci"); HYPOTHESIS_PROFILE=long searches longer.
settings.register_profile("ci", max_examples=150, deadline=None, database=None, print_blob=True)
settings.register_profile("long", max_examples=5000, deadline=None, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL server (Debian's package) with fsync on, or ``TEST_POSTGRES_URL``."""
    if url := os.environ.get("TEST_POSTGRES_URL"):
        yield url
        return
    root = Path(tempfile.mkdtemp(prefix="ingest-pg-"))
    server = PostgresServer(root)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
