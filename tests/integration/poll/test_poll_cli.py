"""``ingest kafka up|status|down`` and ``ingest produce`` as a user runs them, on a broker of their own."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ingestion_devtools import kafka_broker as local_broker
from ingestion_devtools.processes import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def ingest(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ingestion_patterns.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_kafka_up_is_idempotent_produce_fills_a_topic_and_down_stops_it(kafka_broker, tmp_path):
    # (kafka_broker: the session's jars are fetched and Java is present, or the test skips/fails there.)
    port, data = free_port(), tmp_path / "kafka"
    started = ingest("kafka", "up", "--port", str(port), "--data-dir", str(data))
    try:
        assert started.returncode == 0, started.stderr
        assert f"Kafka up at 127.0.0.1:{port}" in started.stdout
        pid = local_broker.read_pid_file(data).pid

        again = ingest("kafka", "up", "--port", str(port), "--data-dir", str(data))
        assert again.returncode == 0 and "already running" in again.stdout
        assert local_broker.read_pid_file(data).pid == pid

        status = ingest("kafka", "status", "--data-dir", str(data))
        assert status.returncode == 0 and "answering" in status.stdout

        produced = ingest(
            "produce",
            "--count",
            "25",
            "--interval",
            "0",
            "--topic",
            "cli-topic",
            "--partitions",
            "2",
            "--bad-ratio",
            "0.2",
            "--bootstrap-servers",
            f"127.0.0.1:{port}",
            "--compression",
            "lz4",
        )
        assert produced.returncode == 0, produced.stderr
        assert "sent 25 messages to cli-topic (2 partitions)" in produced.stdout
    finally:
        stopped = ingest("kafka", "down", "--data-dir", str(data))
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert local_broker.read_pid_file(data) is None
    down = ingest("kafka", "status", "--data-dir", str(data))
    assert down.returncode == 1 and "not running" in down.stdout


def test_produce_to_an_unreachable_broker_fails_with_a_clear_message():
    result = ingest("produce", "--count", "1", "--bootstrap-servers", f"127.0.0.1:{free_port()}", timeout=120)
    assert result.returncode == 1
    assert "producing to 127.0.0.1" in result.stderr and "Traceback" not in result.stderr
