"""A real schema registry for the Avro tests: Apicurio Registry (Maven Central's distribution, on Java).

``schema_registry`` is a session fixture, started on first use only, so a run without Avro tests never
starts it. Its H2 database is a file in the session's temporary folder: ``down()`` then ``up()`` keeps
every schema id, as a registry restart does in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingestion_devtools import schema_registry as sr
from ingestion_devtools.kafka_broker import java_executable
from ingestion_devtools.processes import free_port


class LocalRegistry:
    """The session's registry, which a test may take down and bring up again (same port, same ids)."""

    def __init__(self, data_dir: Path, port: int):
        self.data_dir, self.port = data_dir, port
        self.running: sr.Registry | None = None

    @property
    def url(self) -> str:
        """The Confluent-compatible API (what producers and the decoder use)."""
        return f"http://127.0.0.1:{self.port}{sr.CCOMPAT_PATH}"

    def up(self) -> None:
        self.running = sr.start_registry(self.port, self.data_dir, timeout=240)

    def down(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


@pytest.fixture(scope="session")
def schema_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """Apicurio Registry for the session. Skips only when Java is absent; a failed download fails."""
    if java_executable() is None:
        pytest.skip("Java is not installed: Apicurio Registry needs Java 17+ (apt-get install openjdk-17-jre-headless)")
    try:
        sr.ensure_app()
    except sr.RegistryError as error:
        pytest.fail(f"cannot fetch Apicurio Registry: {error}")
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"), free_port())
    registry.up()
    try:
        yield registry
    finally:
        registry.down()
