"""The embedded default platform's services, started as local processes by ``ingest demo``/``dev``.

Each ``start_*`` function registers its process's shutdown on an ``ExitStack``, so whatever a
command started is stopped when it ends, by Ctrl-C or by an error.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass

from . import settings
from .processes import ManagedProcess

LOG_DIR = settings.DATA_DIR / "logs"


@dataclass(frozen=True)
class Service:
    name: str
    url: str
    process: ManagedProcess | None


def _start(stack: ExitStack, name: str, *cli_args: str, health_url: str, timeout: float = 60) -> ManagedProcess:
    process = ManagedProcess.ingest(name, *cli_args, log_path=LOG_DIR / f"{name}.log").start()
    stack.callback(process.stop)
    process.wait_http(health_url, timeout=timeout)
    return process


def start_receiver(stack: ExitStack, *, port: int, workers: int = 1) -> Service:
    """The webhook receiver under gunicorn, writing to WEBHOOK_INBOX_URL."""
    url = f"http://127.0.0.1:{port}"
    process = _start(
        stack, "webhook-receiver", "webhook-receiver", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), health_url=f"{url}/ready",
    )
    return Service("webhook receiver", url, process)


def start_mock_api(stack: ExitStack, *, port: int, records: int) -> Service:
    """The mock source API under gunicorn; SOURCE_API_URL is pointed at it."""
    url = f"http://127.0.0.1:{port}"
    process = _start(
        stack, "mock-api", "mock-api", "--host", "127.0.0.1", "--port", str(port), "--records", str(records),
        "--token", settings.get("SOURCE_API_TOKEN"), health_url=f"{url}/health",
    )
    os.environ["SOURCE_API_URL"] = url
    return Service("mock API", url, process)


class KafkaUnavailable(RuntimeError):
    """The local broker cannot run here; the message says why (no Java, no Maven, jars not fetched...)."""


def start_kafka(stack: ExitStack, *, port: int) -> Service:
    """A single-node KRaft broker from Apache Kafka's jars; KAFKA_BOOTSTRAP_SERVERS is pointed at it.

    A broker that ``ingest kafka up`` already runs on the same data folder is reused (and left running).
    Raises KafkaUnavailable when no broker can be started here.
    """
    from .kafka import broker

    if broker.java_executable() is None:
        raise KafkaUnavailable("Java is not installed (the local broker runs Apache Kafka's jars on Java 17 or newer)")
    data_dir = settings.DATA_DIR / "kafka"
    running = broker.read_pid_file(data_dir)
    if running is None:
        try:
            running = broker.start_broker(port=port, data_dir=data_dir, log_path=LOG_DIR / "kafka.log")
        except broker.BrokerError as error:
            raise KafkaUnavailable(str(error).splitlines()[0]) from error
        stack.callback(running.stop)
    os.environ["KAFKA_BOOTSTRAP_SERVERS"] = running.bootstrap_servers
    return Service("Kafka broker", running.bootstrap_servers, None)
