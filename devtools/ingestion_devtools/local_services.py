"""The embedded default platform's services, started as local processes by ``ingest demo``/``dev``.

Each ``start_*`` function registers its process's shutdown on an ``ExitStack``, so whatever a
command started is stopped when it ends, by Ctrl-C or by an error. The services get their settings
as their environment; a service that moves a setting (the mock API's URL, the broker's address)
returns it, and the caller carries it on in its own copy of the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from ingestion_patterns.settings import Settings

from .processes import ManagedProcess


def log_dir(settings: Settings) -> Path:
    """Where the local services write their logs."""
    return settings.ingest_data_dir / "logs"


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    process: ManagedProcess | None


def _start(
    stack: ExitStack, settings: Settings, name: str, *cli_args: str, health_url: str, timeout: float = 60
) -> ManagedProcess:
    process = ManagedProcess.ingest(
        name, *cli_args, env=settings.env(), log_path=log_dir(settings) / f"{name}.log"
    ).start()
    stack.callback(process.stop)
    process.wait_http(health_url, timeout=timeout)
    return process


def start_receiver(stack: ExitStack, settings: Settings, *, port: int, workers: int = 1) -> Service:
    """The webhook receiver under gunicorn, writing to the settings' inbox."""
    url = f"http://127.0.0.1:{port}"
    process = _start(
        stack,
        settings,
        "webhook-receiver",
        "webhook-receiver",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        health_url=f"{url}/ready",
    )
    return Service("webhook receiver", url, process)


def start_mock_api(stack: ExitStack, settings: Settings, *, port: int, records: int) -> Service:
    """The mock source API under gunicorn, taking the settings' token and API key; its URL is the SOURCE_API_URL."""
    url = f"http://127.0.0.1:{port}"
    process = _start(
        stack,
        settings,
        "mock-api",
        "mock-api",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--records",
        str(records),
        "--token",
        settings.source_api_token,
        "--api-key",
        settings.source_api_key,
        health_url=f"{url}/health",
    )
    return Service("mock API", url, process)


class KafkaUnavailable(RuntimeError):
    """The local broker cannot run here; the message says why (no Java, no Maven, jars not fetched...)."""


def start_kafka(stack: ExitStack, settings: Settings, *, port: int) -> Service:
    """A single-node KRaft broker from Apache Kafka's jars; its address is the KAFKA_BOOTSTRAP_SERVERS.

    A broker that ``ingest kafka up`` already runs on the same data folder is reused (and left running).
    Raises KafkaUnavailable when no broker can be started here.
    """
    from . import kafka_broker as broker

    if broker.java_executable() is None:
        raise KafkaUnavailable("Java is not installed (the local broker runs Apache Kafka's jars on Java 17 or newer)")
    data_dir = settings.ingest_data_dir / "kafka"
    running = broker.read_pid_file(data_dir)
    if running is None:
        try:
            running = broker.start_broker(port=port, data_dir=data_dir, log_path=log_dir(settings) / "kafka.log")
        except broker.BrokerError as error:
            raise KafkaUnavailable(str(error).splitlines()[0]) from error
        stack.callback(running.stop)
    return Service("Kafka broker", running.bootstrap_servers, None)


class RegistryUnavailable(RuntimeError):
    """The local schema registry cannot run here; the message says why (no Java, no Maven...)."""


def start_registry(stack: ExitStack, settings: Settings, *, port: int) -> Callable[[], Service]:
    """Apicurio Registry (``ingest registry``), its H2 file in INGEST_DATA_DIR/registry so schema ids
    outlive it (the broker's topics keep messages that carry them). Returns at once: call the result
    to wait until it answers (it starts beside the broker). A registry ``ingest registry up`` already
    runs on the same data folder is reused (and left running). Raises RegistryUnavailable when none
    can be started here."""
    from . import schema_registry as sr

    data_dir = settings.ingest_data_dir / "registry"
    running = sr.read_pid_file(data_dir)
    if running is None:
        if sr.java_executable() is None:
            raise RegistryUnavailable("Java is not installed (Apicurio Registry runs on Java 17 or newer)")
        try:
            running = sr.start_registry(port, data_dir, wait=False)
        except sr.RegistryError as error:
            raise RegistryUnavailable(str(error).splitlines()[0]) from error
        stack.callback(running.stop)

    def ready() -> Service:
        try:
            running.wait_ready()
        except (sr.RegistryError, TimeoutError) as error:
            raise RegistryUnavailable(str(error).splitlines()[0]) from error
        return Service("schema registry", running.ccompat_url, None)

    return ready
