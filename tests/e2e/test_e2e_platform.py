"""The user's flow on a real cluster: install, webhooks through the ingress, runs as Kubernetes Jobs,
rows in DuckDB on the volume; the pull job into final_data; Kafka messages into kafka_events."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest
from e2e_helpers import Cluster

from ingestion_patterns.webhooks.simulate import send_webhooks

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

RUN_TIMEOUT = 900  # sensor tick + queue + pod start + run, on a small kind node


def test_helm_tests_pass(cluster: Cluster) -> None:
    """Every chart's `helm test` pod: receiver /health /ready /metrics, mock API, gRPC code server, Kafka topic,
    and the Dagster webserver with the code location loaded."""
    out = cluster.helm("test", cluster.target.release, "--logs", "--timeout", "10m")
    assert "Phase:          Failed" not in out and "Phase:          Succeeded" in out, out


def test_signed_webhooks_through_the_ingress_land_in_duckdb_via_a_run_job(cluster: Cluster) -> None:
    secret = cluster.secret_value(cluster.name("webhook-receiver-signing"), "WEBHOOK_SECRET_DEMO")
    before = {j["metadata"]["name"] for j in cluster.run_jobs("webhook_ingestion_job")}
    summary = asyncio.run(send_webhooks(cluster.target.ingress_url, "demo", 100, secret=secret, concurrency=8))
    assert len(summary.accepted) == 100, summary.describe() + f" {summary.rejected[:3]} {summary.failed[:3]}"

    # The sensor sees the inbox and the daemon launches the run as a Kubernetes Job.
    job = cluster.wait_for_succeeded_run_job("webhook_ingestion_job", after=before, timeout=RUN_TIMEOUT)
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    volumes = job["spec"]["template"]["spec"]["volumes"]
    assert any("persistentVolumeClaim" in v for v in volumes), "the run pod must mount the DuckDB volume"

    ids = ", ".join(f"'{event_id}'" for event_id in summary.accepted)
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:  # one run may land part of them; the sensor requests more until the inbox is drained
        landed = cluster.duckdb_query(
            f"SELECT count(*) FROM ingestion.webhook_data WHERE source_id = 'demo' AND event_id IN ({ids})")[0][0]
        if landed == 100 or time.monotonic() > deadline:
            break
        time.sleep(10)
    assert landed == 100


def test_pull_job_lands_the_source_in_final_data(cluster: Cluster) -> None:
    health = json.loads(cluster.python_in(
        cluster.name("user-code"),
        "import os, urllib.request; print(urllib.request.urlopen(os.environ['SOURCE_API_URL'] + '/health').read().decode())",
    ))
    before = {j["metadata"]["name"] for j in cluster.run_jobs("pull_job")}
    # Launched like a user would from the CLI: queued in the instance, dequeued by the daemon.
    cluster.kubectl("exec", f"deploy/{cluster.name('dagster-webserver')}", "--", "dagster", "job", "launch",
                    "--job", "pull_job", "--workspace", "/opt/dagster/workspace/workspace.yaml", timeout=300)
    cluster.wait_for_succeeded_run_job("pull_job", after=before, timeout=RUN_TIMEOUT)
    rows, distinct = cluster.duckdb_query("SELECT count(*), count(DISTINCT id) FROM ingestion.final_data")[0]
    assert rows == distinct == health["records"] > 0


def test_kafka_messages_land_in_kafka_events(cluster: Cluster) -> None:
    count = 50
    start = cluster.duckdb_query(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ingestion' AND table_name = 'kafka_events'")
    before = cluster.duckdb_query("SELECT count(*) FROM ingestion.kafka_events")[0][0] if start[0][0] else 0
    # Produced from inside the cluster, to the Strimzi bootstrap service the code location uses.
    cluster.kubectl("exec", f"deploy/{cluster.name('user-code')}", "--", "ingest", "produce", "--count", str(count),
                    "--interval", "0", "--seed", str(random.randrange(1 << 30)), timeout=300)
    deadline = time.monotonic() + RUN_TIMEOUT
    after = before
    while time.monotonic() < deadline:
        exists = cluster.duckdb_query(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ingestion' "
            "AND table_name = 'kafka_events'")[0][0]
        if exists:
            after = cluster.duckdb_query("SELECT count(*) FROM ingestion.kafka_events")[0][0]
            if after >= before + count:
                break
        time.sleep(15)
    assert after - before == count
    jobs = cluster.run_jobs("kafka_poll_job")
    assert any(j.get("status", {}).get("succeeded") for j in jobs), "the poll ran as a Kubernetes Job"
