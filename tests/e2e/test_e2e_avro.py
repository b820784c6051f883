"""Avro inside the cluster: the release's Apicurio Registry (global.schemaRegistry, charts/kafka's registry) and
the Avro topic `payments` declared in global.sources.kafka_topics (k8s/local-cluster/config/platform-values.yaml
on the local cluster; skipped, saying why, on a release without them). Payments are produced from the
code-location pod in the Confluent wire format with their schema registered in that registry, and land in
ingestion.payments (bad ones in ingestion.payments_rejects, and on payments.dlq) through the poll sensor and a run
pod, which fetch the writer schema from the registry by the id each message carries.
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

import pytest
from e2e_helpers import Cluster, kafka_mode

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

RUN_TIMEOUT = 900  # sensor tick + queue + pod start + run, on a small node
TOPIC = "payments"
JOB = "payments_kafka_job"

# Run in the code-location pod, with its own settings and Kafka client (the runtime image has no devtools, so no
# `ingest produce`): register the payment schema under <topic>-value at SCHEMA_REGISTRY_URL (the registry's
# Confluent-compatible API), then produce COUNT values in the wire format. The first BAD are bad, in equal parts:
# a negative amount (a check), a body cut short, and JSON (not the wire format). Prints the schema id and what
# was sent.
PRODUCE = """
import asyncio, datetime, io, json, os, sys, urllib.request
from fastavro import parse_schema, schemaless_writer
from ingestion_patterns.settings import load_settings
from ingestion_patterns.poll.avro import encode_wire
from ingestion_patterns.poll.client import kafka_resource
topic, count, bad, run = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
schema = {"type": "record", "name": "Payment", "namespace": "ingestion_patterns.e2e", "fields": [
    {"name": "transaction_id", "type": "string"}, {"name": "account_id", "type": "string"},
    {"name": "amount", "type": "double"}, {"name": "currency", "type": "string"},
    {"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "merchant", "type": ["null", "string"], "default": None},
    {"name": "channel", "type": ["null", "string"], "default": None}]}
request = urllib.request.Request(
    os.environ["SCHEMA_REGISTRY_URL"].rstrip("/") + f"/subjects/{topic}-value/versions",
    data=json.dumps({"schema": json.dumps(schema), "schemaType": "AVRO"}).encode(),
    headers={"Content-Type": "application/vnd.schemaregistry.v1+json"}, method="POST")
schema_id = int(json.loads(urllib.request.urlopen(request, timeout=30).read())["id"])
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
    sent = in_code_location(cluster, PRODUCE, TOPIC, str(count), str(bad), run)
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

    def landed(counts: dict[str, int]) -> tuple[int, int]:
        rows, rejects = (counts.get(t, 0) - before.get(t, 0) for t in (TOPIC, f"{TOPIC}_rejects"))
        return rows, rejects

    deadline = time.monotonic() + RUN_TIMEOUT
    while True:  # the sensor requests runs until the lag is zero
        after = cluster.table_counts()
        if sum(landed(after)) >= count or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert landed(after) == (count - bad, bad), (before, after)
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
