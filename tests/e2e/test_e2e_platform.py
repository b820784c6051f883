"""The user's flow on a real cluster: install, webhooks through the ingress, runs as Kubernetes Jobs,
rows in DuckDB on the volume; the pull job into final_data; Kafka messages into kafka_events."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time

import pytest
from e2e_helpers import Cluster, kafka_mode

from ingestion_devtools.webhook_simulator import send_webhooks

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

RUN_TIMEOUT = 900  # sensor tick + queue + pod start + run, on a small kind node

# COUNT messages, the first BAD of them bad (half malformed JSON, half a negative amount), sent with the code
# location's KafkaResource (its KAFKA_* settings: SASL_SSL on the secured cluster) and its topic.
PRODUCE = """
import asyncio, datetime, json, sys
from ingestion_patterns.settings import load_settings
from ingestion_patterns.poll.client import kafka_resource
count, bad, run = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
settings = load_settings()
kafka = kafka_resource(settings)

def value(i):
    if i < bad // 2:
        return b'{"transaction_id": "broken'
    event = {"transaction_id": f"txn-e2e-{run}-{i:06d}", "account_id": f"acct-{i % 17:06d}",
             "amount": -5.0 if i < bad else 10.0 + i, "currency": "EUR", "merchant": "grocer", "channel": "card",
             "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    return json.dumps(event).encode()

async def main():
    producer = kafka.producer(acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(count):
            await producer.send(settings.kafka_topic, value(i), key=f"acct-{i % 17}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    print(json.dumps({"sent": count, "protocol": kafka.security_protocol}))

asyncio.run(main())
"""

# What each test landed, for the last test's check of the whole DuckDB file: rows added to an append-only
# table, or (final_data) rows it must hold.
LANDED: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def counts_before(cluster: Cluster) -> dict[str, int]:
    """Rows per table before these tests (the release may be a reused one)."""
    return cluster.table_counts()


def test_helm_tests_pass(cluster: Cluster) -> None:
    """Every chart's `helm test` pod: receiver /health /ready /metrics, mock API, gRPC code server, Kafka topic,
    and the Dagster webserver with the code location loaded."""
    out = cluster.helm("test", cluster.target.release, "--logs", "--timeout", "10m")
    assert "Phase:          Failed" not in out and "Phase:          Succeeded" in out, out


def test_signed_webhooks_through_the_ingress_land_in_duckdb_via_a_run_job(cluster: Cluster) -> None:
    secret = cluster.secret_value(cluster.name("webhook-receiver-signing"), "WEBHOOK_SECRET_DEMO")
    before = {j["metadata"]["name"] for j in cluster.run_jobs("demo_webhook_job")}
    posted = time.monotonic()
    summary = asyncio.run(send_webhooks(cluster.target.ingress_url, "demo", 100, secret=secret, concurrency=8))
    assert len(summary.accepted) == 100, summary.describe() + f" {summary.rejected[:3]} {summary.failed[:3]}"

    # The sensor sees the inbox and the daemon launches the run as a Kubernetes Job.
    job = cluster.wait_for_succeeded_run_job("demo_webhook_job", after=before, timeout=RUN_TIMEOUT)
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    volumes = job["spec"]["template"]["spec"]["volumes"]
    assert any("persistentVolumeClaim" in v for v in volumes), "the run pod must mount the DuckDB volume"

    first_job = time.monotonic() - posted
    ids = ", ".join(f"'{event_id}'" for event_id in summary.accepted)
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:  # one run may land part of them; the sensor requests more until the inbox is drained
        landed = cluster.duckdb_query(
            f"SELECT count(*) FROM ingestion.webhook_data WHERE source_id = 'demo' AND event_id IN ({ids})"
        )[0][0]
        if landed == 100 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert landed == 100
    print(
        f"\ne2e timing: 100 webhooks POSTed through the ingress -> run Job succeeded {first_job:.0f}s -> "
        f"all rows in DuckDB {time.monotonic() - posted:.0f}s after the POST",
        file=sys.stderr,
    )
    LANDED["webhook_data"] = 100


def test_pull_job_lands_the_source_in_final_data(cluster: Cluster) -> None:
    health = json.loads(
        cluster.python_in(
            cluster.name("user-code"),
            "import os, urllib.request; print(urllib.request.urlopen(os.environ['SOURCE_API_URL'] + '/health').read().decode())",
        )
    )
    before = {j["metadata"]["name"] for j in cluster.run_jobs("pull_job")}
    # Launched like a user would from the CLI: queued in the instance, dequeued by the daemon.
    cluster.kubectl(
        "exec",
        f"deploy/{cluster.name('dagster-webserver')}",
        "--",
        "dagster",
        "job",
        "launch",
        "--job",
        "pull_job",
        "--workspace",
        "/opt/dagster/workspace/workspace.yaml",
        timeout=300,
    )
    cluster.wait_for_succeeded_run_job("pull_job", after=before, timeout=RUN_TIMEOUT)
    rows, distinct = cluster.duckdb_query("SELECT count(*), count(DISTINCT id) FROM ingestion.final_data")[0]
    assert rows == distinct == health["records"] > 0
    LANDED["final_data"] = health["records"]


def test_kafka_messages_land_in_kafka_events(cluster: Cluster, counts_before: dict[str, int]) -> None:
    if kafka_mode() == "off":
        pytest.skip("E2E_KAFKA=off: the platform was installed without Kafka")
    count = 50
    before = cluster.table_counts()

    def landed(counts: dict[str, int]) -> int:
        return sum(counts.get(t, 0) - before.get(t, 0) for t in ("kafka_events", "kafka_rejects"))

    jobs_before = {j["metadata"]["name"] for j in cluster.run_jobs("kafka_poll_job")}
    # Produced from inside the cluster, with the code location's own Kafka settings and client (the runtime
    # image has no `ingest produce`: devtools stay out of it), to the bootstrap service it uses; a fifth are bad
    # messages, which must land as rejects with their reason, not vanish.
    sent = json.loads(
        cluster.kubectl(
            "exec",
            f"deploy/{cluster.name('user-code')}",
            "--",
            "python",
            "-c",
            PRODUCE,
            str(count),
            str(count // 5),
            str(random.randrange(1 << 30)),
            timeout=300,
        )
        .strip()
        .splitlines()[-1]
    )
    assert sent["sent"] == count
    print(f"\ne2e: {count} messages produced over {sent['protocol']}", file=sys.stderr)
    if kafka_mode() == "standalone":  # deploy.sh installs it secured, as production is
        assert sent["protocol"] == "SASL_SSL"
    cluster.wait_for_succeeded_run_job("kafka_poll_job", after=jobs_before, timeout=RUN_TIMEOUT)
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:  # the sensor requests runs until the lag is zero
        after = cluster.table_counts()
        if landed(after) >= count or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert landed(after) == count, (before, after)
    rejects = after.get("kafka_rejects", 0) - before.get("kafka_rejects", 0)
    assert 0 < rejects < count
    reasons = cluster.duckdb_query("SELECT count(*) FROM ingestion.kafka_rejects WHERE coalesce(reason, '') = ''")
    assert reasons[0][0] == 0, "every reject carries its reason"
    LANDED["kafka_events"], LANDED["kafka_rejects"] = count - rejects, rejects


def test_duckdb_on_the_volume_holds_all_three_tables(cluster: Cluster, counts_before: dict[str, int]) -> None:
    """The tests above landed into one DuckDB file on the PersistentVolume; it holds exactly what they landed,
    and still does after the pod that reads it is replaced."""
    expected_tables = {"webhook_data", "final_data"} | ({"kafka_events"} if kafka_mode() != "off" else set())
    missing = expected_tables - LANDED.keys()
    assert not missing, f"an earlier test did not land its rows: {sorted(missing)}"
    expected = {t: counts_before.get(t, 0) + n for t, n in LANDED.items() if t != "final_data"}
    expected["final_data"] = LANDED["final_data"]

    def held() -> dict[str, int]:
        counts = cluster.table_counts()
        return {t: counts.get(t, 0) for t in expected}

    assert held() == expected
    user_code = f"deploy/{cluster.name('user-code')}"
    cluster.kubectl("rollout", "restart", user_code)
    cluster.kubectl("rollout", "status", user_code, "--timeout=300s", timeout=360)
    assert held() == expected
    print(f"\ne2e: DuckDB on the volume after a new user-code pod: {expected}", file=sys.stderr)
