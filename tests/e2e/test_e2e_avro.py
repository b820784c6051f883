"""Avro inside the cluster: the release's Apicurio Registry (global.schemaRegistry, charts/kafka's registry) and
the Avro topic `payments` declared in global.sources.kafka_topics (k8s/local-cluster/config/platform-values.yaml
on the local cluster; skipped, saying why, on a release without them). Payments are produced from the
code-location pod in the Confluent wire format with their schema registered in that registry, and land in
ingestion.payments (bad ones in ingestion.payments_rejects, and on payments.dlq) through the poll sensor and a run
pod, which fetch the writer schema from the registry by the id each message carries. Then the registry's pod is
deleted: its schemas are on its volume (charts/kafka's registry.persistence), so the id those messages carry still
resolves and more payments written with it, not registered again, land as rows.
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

import pytest
from e2e_helpers import Cluster, kafka_mode

from ingestion_devtools.kafka_producer import TRANSACTION_SCHEMA

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

RUN_TIMEOUT = 900  # sensor tick + queue + pod start + run, on a small node
TOPIC = "payments"
JOB = "payments_kafka_job"

# The payment record: the demo producer's transaction schema (timestamp-micros, descriptive fields optional).
SCHEMA = {**TRANSACTION_SCHEMA, "name": "Payment", "namespace": "ingestion_patterns.e2e"}

# The registry's Confluent-compatible API (SCHEMA_REGISTRY_URL) from the code-location pod: `registry(path)` GETs,
# `registry(path, body)` POSTs; both answer the parsed JSON.
REGISTRY = """
import json, os, sys, urllib.request

def registry(path, body=None):
    request = urllib.request.Request(
        os.environ["SCHEMA_REGISTRY_URL"].rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"}, method="GET" if body is None else "POST")
    return json.loads(urllib.request.urlopen(request, timeout=30).read())
"""

# Run in the code-location pod, with its own settings and Kafka client (the runtime image has no devtools, so no
# `ingest produce`): register the payment schema (argument 5, JSON) under <topic>-value at SCHEMA_REGISTRY_URL (the
# registry's Confluent-compatible API), or with a schema id as argument 6 write with that id and register nothing,
# then produce COUNT values in the wire format. The first BAD are bad, in equal parts: a negative amount (a check),
# a body cut short, and JSON (not the wire format). Prints the schema id and what was sent.
PRODUCE = (
    REGISTRY
    + """
import asyncio, datetime, io
from fastavro import parse_schema, schemaless_writer
from ingestion_patterns.settings import load_settings
from ingestion_patterns.poll.avro import encode_wire
from ingestion_patterns.poll.client import kafka_resource
topic, count, bad, run, schema = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
if len(sys.argv) > 6:
    schema_id = int(sys.argv[6])
else:
    schema_id = int(registry(f"/subjects/{topic}-value/versions", {"schema": json.dumps(schema), "schemaType": "AVRO"})["id"])
parsed = parse_schema(schema)
when = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.timezone.utc)

def value(i):
    event = {"transaction_id": f"pay-e2e-{run}-{i:06d}", "account_id": f"acct-{i % 13:06d}",
             "amount": -5.0 if i < bad // 3 else 10.0 + i, "currency": "EUR",
             "timestamp": when + datetime.timedelta(seconds=i), "merchant": "grocer", "channel": None}
    if bad // 3 <= i < 2 * (bad // 3):
        return json.dumps({**event, "timestamp": event["timestamp"].isoformat()}).encode()
    body = io.BytesIO()
    schemaless_writer(body, parsed, event)
    wire = encode_wire(schema_id, body.getvalue())
    return wire[:8] if 2 * (bad // 3) <= i < bad else wire

async def main():
    kafka = kafka_resource(load_settings())
    producer = kafka.producer(acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(count):
            await producer.send(topic, value(i), key=f"acct-{i % 13}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    print(json.dumps({"sent": count, "schema_id": schema_id, "protocol": kafka.security_protocol}))

asyncio.run(main())
"""
)

# Messages on a topic (the sum over its partitions of end minus start offsets), read in the code-location pod.
TOPIC_SIZE = """
import asyncio, json, sys
from aiokafka import TopicPartition
from ingestion_patterns.settings import load_settings
from ingestion_patterns.poll.client import kafka_resource

async def main():
    kafka = kafka_resource(load_settings())
    admin = kafka.admin()
    await admin.start()
    try:
        (described,) = await admin.describe_topics([sys.argv[1]])
    finally:
        await admin.close()
    partitions = [TopicPartition(sys.argv[1], p["partition"]) for p in described["partitions"]]
    async with kafka.consumer_session() as consumer:
        end, start = await consumer.end_offsets(partitions), await consumer.beginning_offsets(partitions)
    print(json.dumps(sum(end[p] - start[p] for p in partitions)))

asyncio.run(main())
"""


def in_code_location(cluster: Cluster, script: str, *args: str) -> Any:
    """The JSON a script prints last, run with ``args`` in the code-location pod."""
    out = cluster.kubectl(
        "exec", f"deploy/{cluster.name('user-code')}", "--", "python", "-c", script, *args, timeout=300
    )
    return json.loads(out.strip().splitlines()[-1])


def wait_until_landed(cluster: Cluster, before: dict[str, int], count: int) -> tuple[int, int]:
    """The rows and rejects landed since ``before`` (table counts), once they make ``count`` or after RUN_TIMEOUT."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:  # the sensor requests runs until the lag is zero
        after = cluster.table_counts()
        landed = (
            after.get(TOPIC, 0) - before.get(TOPIC, 0),
            after.get(f"{TOPIC}_rejects", 0) - before.get(f"{TOPIC}_rejects", 0),
        )
        if sum(landed) >= count or time.monotonic() > deadline:
            print(f"e2e: landed {landed} (before {before}, after {after})", file=sys.stderr)
            return landed
        time.sleep(5)


@pytest.fixture(scope="module")
def avro_release(cluster: Cluster) -> Cluster:
    """The release has the registry on and `payments` declared, else the test skips saying why."""
    if kafka_mode() == "off":
        pytest.skip("E2E_KAFKA=off: the platform was installed without Kafka")
    values = json.loads(cluster.helm("get", "values", cluster.target.release, "--all", "-o", "json"))
    if not values["global"].get("schemaRegistry", {}).get("enabled"):
        pytest.skip("global.schemaRegistry.enabled is off on this release (k8s/local-cluster's deploy turns it on)")
    declared = [t for t in values["global"]["sources"].get("kafka_topics") or [] if t.get("name") == TOPIC]
    if not declared or declared[0].get("value_format") != "avro":
        pytest.skip(f"no Avro topic {TOPIC!r} in global.sources.kafka_topics (k8s/local-cluster's deploy declares it)")
    cluster.kubectl("rollout", "status", f"deploy/{cluster.name('kafka-registry')}", "--timeout=300s", timeout=360)
    return cluster


def test_avro_payments_produced_in_the_cluster_land_in_duckdb(avro_release: Cluster) -> None:
    cluster = avro_release
    count, bad = 60, 12  # 4 negative amounts, 4 JSON values, 4 cut bodies
    run = f"{random.randrange(1 << 30):09d}"
    before = cluster.table_counts()
    dlq_before = in_code_location(cluster, TOPIC_SIZE, f"{TOPIC}.dlq")
    jobs_before = {j["metadata"]["name"] for j in cluster.run_jobs(JOB)}

    produced = time.monotonic()
    sent = in_code_location(cluster, PRODUCE, TOPIC, str(count), str(bad), run, json.dumps(SCHEMA))
    assert sent["sent"] == count and sent["schema_id"] >= 0, sent
    if kafka_mode() == "standalone":  # deploy.sh installs Kafka secured, as production has it
        assert sent["protocol"] == "SASL_SSL"
    # The schema is in the release's registry, under the subject the values were written for.
    subjects = in_code_location(
        cluster,
        "import json, os, urllib.request; "
        "print(urllib.request.urlopen(os.environ['SCHEMA_REGISTRY_URL'] + '/subjects', timeout=30).read().decode())",
    )
    assert f"{TOPIC}-value" in subjects, subjects
    print(f"\ne2e: {count} Avro payments produced (schema id {sent['schema_id']}, {bad} bad)", file=sys.stderr)

    # The poll sensor sees the lag and launches the topic's job as a Kubernetes Job; it decodes with the schema
    # fetched from the registry by the id in each value.
    cluster.wait_for_succeeded_run_job(JOB, after=jobs_before, timeout=RUN_TIMEOUT)

    assert wait_until_landed(cluster, before, count) == (count - bad, bad)
    elapsed = time.monotonic() - produced

    # The good rows are this run's payments, decoded field by field (timestamp-micros into timestamptz).
    rows = cluster.duckdb_query(
        "SELECT count(*), count(DISTINCT payment_id), min(amount), sum(amount), "
        "min(epoch_us(paid_at)), max(epoch_us(paid_at)), count(channel), min(merchant), min(currency) "
        f"FROM ingestion.{TOPIC} WHERE payment_id LIKE 'pay-e2e-{run}-%'"
    )[0]
    good = range(bad, count)
    first = 1767323045678901  # 2026-01-02T03:04:05.678901Z in microseconds
    assert rows == [
        count - bad,
        count - bad,
        10.0 + bad,
        sum(10.0 + i for i in good),
        first + bad * 1_000_000,
        first + (count - 1) * 1_000_000,
        0,
        "grocer",
        "EUR",
    ], rows
    unexplained = f"SELECT count(*) FROM ingestion.{TOPIC}_rejects WHERE coalesce(reason, '') = ''"
    assert cluster.duckdb_query(unexplained)[0][0] == 0, "every reject carries its reason"
    # Rejects are also produced to the dead-letter topic (at least once).
    dlq_after = in_code_location(cluster, TOPIC_SIZE, f"{TOPIC}.dlq")
    assert dlq_after - dlq_before >= bad, (dlq_before, dlq_after)
    print(
        f"\ne2e timing: {count} Avro payments produced -> {count - bad} rows in ingestion.{TOPIC} and {bad} "
        f"rejects {elapsed:.0f}s later",
        file=sys.stderr,
    )


def test_the_registry_keeps_its_schema_ids_across_a_restart(avro_release: Cluster) -> None:
    """The ids Avro messages already in Kafka carry outlive the registry's pod (charts/kafka's registry.persistence):
    after the pod is deleted and replaced, the id still resolves, and payments written with it, not registered
    again, land as rows, not as "unknown schema id" rejects."""
    cluster = avro_release
    registered = in_code_location(
        cluster,
        REGISTRY + "print(json.dumps(registry(f'/subjects/{sys.argv[1]}-value/versions', "
        "{'schema': sys.argv[2], 'schemaType': 'AVRO'})))",
        TOPIC,
        json.dumps(SCHEMA),
    )
    schema_id = int(registered["id"])
    deployment = cluster.name("kafka-registry")
    selector = "app.kubernetes.io/component=schema-registry,app.kubernetes.io/instance=" + cluster.target.release

    def registry_pods() -> set[str]:
        pods = json.loads(cluster.kubectl("get", "pods", "-l", selector, "-o", "json"))["items"]
        return {p["metadata"]["uid"] for p in pods if not p["metadata"].get("deletionTimestamp")}

    old = registry_pods()
    assert len(old) == 1, old
    restarted = time.monotonic()
    cluster.kubectl("delete", "pod", "-l", selector, "--wait=true", "--timeout=120s", timeout=180)
    cluster.kubectl("wait", "--for=condition=Ready", "pod", "-l", selector, "--timeout=300s", timeout=360)
    cluster.kubectl("wait", "--for=condition=Available", f"deploy/{deployment}", "--timeout=300s", timeout=360)
    new = registry_pods()
    assert len(new) == 1 and not new & old, (old, new)
    print(f"\ne2e: registry pod replaced, Ready {time.monotonic() - restarted:.0f}s after the delete", file=sys.stderr)

    # The id resolves through the Confluent-compatible API to the schema registered before the restart.
    found = in_code_location(
        cluster, REGISTRY + "print(json.dumps(registry(f'/schemas/ids/{sys.argv[1]}')))", str(schema_id)
    )
    assert json.loads(found["schema"]) == SCHEMA, found
    subjects = in_code_location(cluster, REGISTRY + "print(json.dumps(registry('/subjects')))")
    assert f"{TOPIC}-value" in subjects, subjects

    # Payments written with that id (nothing registered) land as rows: the run pod fetches the writer schema by id.
    count = 12
    run = f"{random.randrange(1 << 30):09d}"
    before = cluster.table_counts()
    jobs_before = {j["metadata"]["name"] for j in cluster.run_jobs(JOB)}
    sent = in_code_location(cluster, PRODUCE, TOPIC, str(count), "0", run, json.dumps(SCHEMA), str(schema_id))
    assert sent == {"sent": count, "schema_id": schema_id, "protocol": sent["protocol"]}, sent
    cluster.wait_for_succeeded_run_job(JOB, after=jobs_before, timeout=RUN_TIMEOUT)
    assert wait_until_landed(cluster, before, count) == (count, 0)
    rows = cluster.duckdb_query(f"SELECT count(*) FROM ingestion.{TOPIC} WHERE payment_id LIKE 'pay-e2e-{run}-%'")
    assert rows == [[count]], rows
