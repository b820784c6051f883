"""Benchmark: Kafka messages landed in DuckDB per second versus aiokafka's raw consume rate (not a test).

Sends ``--messages`` transactions of about 200 bytes (1% bad by default) over 3 partitions of a
fresh topic on a local broker (started here from the cached jars unless ``--bootstrap-servers`` is
given), then measures on this machine, one after the other:

1. raw consume: the same consumer settings as the poller, a ``getmany`` loop that does nothing;
2. landing: exactly what a JSON ``KafkaTopicSource`` instance's job does (by default the shipped
   ``transactions`` instance, defs/kafka_topics/transactions/defs.yaml; ``--defs`` names another
   defs.yaml, e.g. the Avro example defs/kafka_topics/examples/payments.yaml with ``--registry URL``:
   the producer then writes Avro), without Dagster's bookkeeping: plan the offset ranges past the stored offsets
   (``plan_poll``, ``save_poll_plan``), then read them from Kafka and validate them against the
   instance's contract and land each batch with its offsets in one transaction (``land_planned``),
   into a fresh DuckDB file.

Both are measured ``--rounds`` times, alternating, and the best of each is compared (other
processes on a shared machine slow one round or the other). Prints both rates and their ratio,
the CPU microseconds per message of each, and checks that events + rejects == messages.

    uv run python bench/bench_kafka.py [--messages 1000000] [--batch-rows 200000] [--rounds 2] [--defs PATH]

Targets: >= 100k events/s landed (issue 4); the JSON component instance >= 0.7 x the raw consume
rate (issue 12).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

import yaml
from aiokafka import TopicPartition

from ingestion_devtools import kafka_broker as local_broker
from ingestion_devtools.kafka_producer import produce
from ingestion_patterns import warehouse
from ingestion_patterns.poll import landing as wk
from ingestion_patterns.poll.avro import SchemaRegistryClient
from ingestion_patterns.poll.client import KafkaResource
from ingestion_patterns.poll.consume import land_planned, plan_poll
from ingestion_patterns.poll.contract import TopicContract
from ingestion_patterns.poll.source import folder_name, parse_spec


def cpu_seconds() -> float:
    """CPU time of this process, all threads (DuckDB's included): unlike wall time, barely moved
    by other processes competing for the cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def raw_consume(kafka: KafkaResource, topic: str, partitions: int, expected: int) -> float:
    """Seconds to read ``expected`` messages with a getmany loop that does nothing else."""
    consumer = kafka.consumer()
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen, started = 0, time.perf_counter()
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=100_000)
            seen += sum(len(records) for records in batch.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


def instance_contract(defs: str) -> TopicContract:
    """The contract of the KafkaTopicSource declared in ``defs`` (a defs.yaml), else the shipped one."""
    if not defs:
        return wk.TRANSACTIONS
    attributes = yaml.safe_load(Path(defs).read_text())["attributes"]
    return TopicContract.of(parse_spec(defs, {"name": folder_name(Path(defs)), **attributes}))


async def land(
    kafka: KafkaResource,
    topic: str,
    database: Path,
    batch_rows: int,
    count: int,
    contract: TopicContract,
    registry_url: str = "",
) -> tuple[float, float, dict]:
    """Seconds to plan and seconds to land (with the final checkpoint) ``count`` messages, and the
    landed counts."""
    conn = warehouse.connect(database, ddl=contract.ddl)
    consumer = kafka.consumer()
    await consumer.start()
    try:
        started = time.perf_counter()
        plan = await plan_poll(consumer, topic, wk.stored_offsets(conn, topic), max_records=count)
        wk.save_poll_plan(conn, topic, plan.ranges)
        planned = time.perf_counter()
        # An Avro instance: a fresh registry client per landing, as a run has (schemas fetched once, then cached).
        async with contextlib.AsyncExitStack() as stack:
            registry = None
            if registry_url:
                registry = SchemaRegistryClient(registry_url)
                stack.push_async_callback(registry.aclose)
            await land_planned(
                consumer,
                conn,
                topic,
                wk.poll_plan(conn, topic),
                batch_rows=batch_rows,
                contract=contract,
                registry=registry,
            )
        conn.execute("CHECKPOINT")  # what the WAL deferred is part of the cost
        landed = time.perf_counter()
        return planned - started, landed - planned, wk.landed_counts(conn, topic, contract)
    finally:
        await consumer.stop()
        conn.close()


async def main_async(args: argparse.Namespace, bootstrap: str, workdir: Path) -> int:
    kafka = KafkaResource(bootstrap_servers=bootstrap)
    contract = instance_contract(args.defs)
    if contract.value_format == "avro" and not args.registry:
        print("an Avro instance needs --registry URL (its Confluent-compatible API; `ingest registry up`)")
        return 2
    print(
        f"landing as the KafkaTopicSource instance {contract.name!r} ({len(contract.columns)} columns, "
        f"{len(contract.checks)} row checks, into ingestion.{contract.events_table})",
        flush=True,
    )
    if args.topic:  # re-measure a topic a previous run filled (its first --messages messages)
        topic, sent = args.topic, None
        count = args.messages
    else:
        topic = f"bench-{secrets.token_hex(3)}"
        print(
            f"producing {args.messages:,} messages to {topic} (3 partitions, bad ratio {args.bad_ratio}) ...",
            flush=True,
        )
        started = time.perf_counter()
        avro = {"value_format": "avro", "registry_url": args.registry} if contract.value_format == "avro" else {}
        sent = await produce(bootstrap, topic, args.messages, partitions=3, bad_ratio=args.bad_ratio, keys=True, **avro)
        count = sent.sent
        print(f"  produced in {time.perf_counter() - started:.1f}s")

    # Rounds alternate the two measurements, each landing into a fresh file; the best round of each
    # is compared, so a burst of load from other processes skews neither side alone.
    raws, lands, cpus = [], [], []
    for round_no in range(1, args.rounds + 1):
        cpu = cpu_seconds()
        raw_seconds = await raw_consume(kafka, topic, 3, count)
        raw_cpu, cpu = cpu_seconds() - cpu, cpu_seconds()
        database = workdir / f"bench-{round_no}.duckdb"
        plan_seconds, land_seconds, counts = await land(
            kafka,
            topic,
            database,
            args.batch_rows,
            count,
            contract,
            args.registry if contract.value_format == "avro" else "",
        )
        land_cpu = cpu_seconds() - cpu
        database.unlink()
        cpus.append((raw_cpu, land_cpu))
        raws.append(raw_seconds)
        lands.append((plan_seconds + land_seconds, plan_seconds, land_seconds))
        print(
            f"  round {round_no}: raw {count / raw_seconds:>9,.0f} msgs/s ({raw_seconds:.2f}s); landed "
            f"{count / lands[-1][0]:>9,.0f} events/s ({lands[-1][0]:.2f}s = plan {plan_seconds:.2f}s + "
            f"land {land_seconds:.2f}s); CPU raw {raw_cpu:.2f}s, landing {land_cpu:.2f}s",
            flush=True,
        )
    raw_seconds = min(raws)
    total, plan_seconds, land_seconds = min(lands)
    raw_rate, land_rate = count / raw_seconds, count / total
    print()
    print(
        f"raw aiokafka consume (getmany, no work) : {raw_rate:>10,.0f} msgs/s  (best of {args.rounds}: {raw_seconds:.2f}s)"
    )
    print(
        f"landed Kafka -> DuckDB (plan + land)    : {land_rate:>10,.0f} events/s (best of {args.rounds}: {total:.2f}s = "
        f"plan {plan_seconds:.2f}s + land {land_seconds:.2f}s incl. checkpoint)"
    )
    print(
        f"ratio landed / raw                      : {land_rate / raw_rate:>10.2f}  (target >= 0.7; landed target >= 100,000/s)"
    )
    raw_cpu, land_cpu = min(c[0] for c in cpus), min(c[1] for c in cpus)
    print(
        f"CPU seconds per message, raw / landing  : {raw_cpu / land_cpu:>10.2f}  (raw {raw_cpu:.2f}s, "
        f"landing {land_cpu:.2f}s of CPU for {count:,}; the ratio if cores were never contended and "
        f"nothing overlapped)"
    )
    print(
        f"CPU per message, raw / landing          : {raw_cpu / count * 1e6:>7.2f} us / {land_cpu / count * 1e6:.2f} us"
    )
    ok = counts["events"] + counts["rejects"] == count and (sent is None or counts["events"] == sent.valid)
    print(
        f"check: {counts['events']:,} events + {counts['rejects']:,} rejects = {count:,} messages"
        f"{'' if sent is None else f', {sent.valid:,} valid'}: {'OK' if ok else 'MISMATCH'}"
    )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--bad-ratio", type=float, default=0.01)
    parser.add_argument("--batch-rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2, help="alternating raw/landing measurements; best of each")
    parser.add_argument("--bootstrap-servers", default="")
    parser.add_argument("--defs", default="", help="a KafkaTopicSource defs.yaml to land as; default transactions")
    parser.add_argument("--registry", default="", help="an Avro --defs: the registry's Confluent-compatible URL")
    parser.add_argument(
        "--topic", default="", help="measure an existing topic (with --bootstrap-servers) instead of producing"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp:
        workdir = Path(tmp)
        if args.bootstrap_servers:
            return asyncio.run(main_async(args, args.bootstrap_servers, workdir))
        port = local_broker.free_port()
        print(f"starting a local Kafka {local_broker.KAFKA_VERSION} broker on 127.0.0.1:{port} ...", flush=True)
        with local_broker.start_broker(port, workdir / "kafka", heap="1g") as broker:
            return asyncio.run(main_async(args, broker.bootstrap_servers, workdir))


if __name__ == "__main__":
    sys.exit(main())
