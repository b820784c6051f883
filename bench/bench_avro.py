"""Benchmark: wire-format Avro values decoded into declared Arrow columns per second, one core (not a test).

Makes ``--records`` transactions of about 200 bytes as Avro (the producer's transaction plus a few
descriptive fields, so the Avro body is ~200 bytes), in the Confluent wire format, and decodes them in
batches of ``--batch`` with ``AvroDecoder`` as the landing does (from an Arrow binary column, the schema
ids read with ``wire_headers``; writer schema from a warm cache: the registry is asked once per schema
id, not per batch), once with the writer schema only and once through a reader schema (Avro's
resolution). In the same run, the same records as JSON (~1.6 x the bytes) are decoded with orjson into
the same columns (the same column builder) as the baseline, and orjson's loop alone as a floor.
Each figure is the best of ``--rounds``.

    uv run python bench/bench_avro.py [--records 200000] [--batch 20000] [--rounds 3]

Target (issue 12): >= 100k records/s of ~200-byte records.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable

import orjson
import pyarrow as pa

from ingestion_devtools.kafka_producer import TRANSACTION_COLUMNS, TRANSACTION_SCHEMA, AvroEncoding, transaction
from ingestion_patterns.poll.avro import AvroColumn, AvroDecoder, WriterSchema, wire_headers

SCHEMA_ID = 1
_EXTRA_FIELDS = [
    {"name": "description", "type": ["null", "string"], "default": None},
    {"name": "country", "type": ["null", "string"], "default": None},
    {"name": "card_last4", "type": ["null", "string"], "default": None},
    {"name": "fee", "type": "double", "default": 0.0},
    {"name": "installments", "type": "int", "default": 1},
]
SCHEMA = {**TRANSACTION_SCHEMA, "fields": [*TRANSACTION_SCHEMA["fields"], *_EXTRA_FIELDS]}
COLUMNS = [
    *TRANSACTION_COLUMNS,
    *(AvroColumn(name, pa.string()) for name in ("description", "country")),
    AvroColumn("fee", pa.float64()),
    AvroColumn("installments", pa.int32()),
]
_WORDS = ("weekly", "groceries", "refund", "subscription", "ticket", "order", "invoice", "payment", "travel")


def make_events(count: int, seed: int = 7) -> list[dict]:
    from datetime import UTC, datetime, timedelta

    rng = random.Random(seed)
    start = datetime.now(UTC)
    events = []
    for seq in range(count):
        event = transaction(rng, f"txn-bench-{seq:09d}", start + timedelta(milliseconds=seq))
        event["description"] = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(11, 16)))
        event["country"] = rng.choice(("DE", "FR", "NL", "US", "GB", "CH"))
        event["card_last4"] = f"{rng.randrange(10_000):04d}"
        event["fee"] = round(rng.uniform(0, 3), 2)
        event["installments"] = rng.randrange(1, 12)
        events.append(event)
    return events


def best_rate(count: int, rounds: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()  # CPU time of this process: one core, whatever else the machine runs
        run()
        best = min(best, time.process_time() - started)
    return count / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    events = make_events(args.records)
    encoding = AvroEncoding(SCHEMA, SCHEMA_ID)
    avro_values = [encoding.encode(e) for e in events]
    json_values = [orjson.dumps(e) for e in events]
    schemas = {SCHEMA_ID: WriterSchema.of(SCHEMA_ID, SCHEMA)}  # as the registry client makes it
    writer_only = AvroDecoder(COLUMNS)
    # A reader schema one version ahead: a field added with its default (what a consumer declares).
    reader = {**SCHEMA, "fields": [*SCHEMA["fields"], {"name": "tag", "type": ["null", "string"], "default": None}]}
    with_reader = AvroDecoder(COLUMNS, reader_schema=reader)
    batches = [slice(i, i + args.batch) for i in range(0, args.records, args.batch)]

    # As the landing has them: each batch's values as an Arrow binary column (the schema ids read in Arrow).
    avro_columns = [pa.array(avro_values[part], pa.binary()) for part in batches]

    def decode(decoder: AvroDecoder) -> Callable[[], None]:
        def run() -> None:
            for column in avro_columns:
                result = decoder.decode(column.to_pylist(), schemas, wire_headers(column))
                assert result.reasons.null_count == len(result.reasons), result.rejects[:3]

        return run

    def decode_json() -> None:
        builder = AvroDecoder(COLUMNS)  # the same column builder and checks, fed orjson's dicts
        for part in batches:
            records = [orjson.loads(v) for v in json_values[part]]
            reasons: list[str | None] = [None] * len(records)
            pa.Table.from_arrays([builder._column(c, records, reasons) for c in COLUMNS], schema=builder.schema)

    def loads_only() -> None:
        for value in json_values:
            orjson.loads(value)

    avro_bytes = sum(map(len, avro_values)) / len(avro_values)
    json_bytes = sum(map(len, json_values)) / len(json_values)
    print(f"{args.records} records, batches of {args.batch}; Avro {avro_bytes:.0f} B/record, JSON {json_bytes:.0f} B")
    figures = {
        "Avro -> Arrow columns (writer schema)": best_rate(args.records, args.rounds, decode(writer_only)),
        "Avro -> Arrow columns (reader schema)": best_rate(args.records, args.rounds, decode(with_reader)),
        "JSON (orjson) -> Arrow columns, baseline": best_rate(args.records, args.rounds, decode_json),
        "JSON orjson.loads alone": best_rate(args.records, args.rounds, loads_only),
    }
    for label, rate in figures.items():
        print(f"  {label:<42} {rate:>10,.0f} records/s  ({1e6 / rate:.2f} us CPU/record)")
    avro_rate = figures["Avro -> Arrow columns (writer schema)"]
    print(f"Avro / JSON baseline: {avro_rate / figures['JSON (orjson) -> Arrow columns, baseline']:.2f} x")
    target = 100_000
    print(f"target >= {target:,} records/s: {'met' if avro_rate >= target else 'NOT met'}")
    return 0 if avro_rate >= target else 1


if __name__ == "__main__":
    sys.exit(main())
