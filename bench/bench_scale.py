"""Benchmark: costs as the data grows: landing rate at 0/10M/50M rows, inbox size, sensor tick (not a test).

Four measurements, each against a baseline taken in the same run:

1. landing rows/s into ``ingestion.webhook_data`` (push: ``land_webhook_batch``), ``ingestion.final_data``
   (pull: ``land_page`` for each page, then ``upsert_final``) and ``ingestion.kafka_events`` (poll:
   ``land_batch``) when the table already holds 0, 10M and 50M rows (``--sizes``). The history is
   made in bulk, in SQL (``INSERT … SELECT … FROM range(n)``, rows shaped like the real ones: random
   webhook ids, one raw_extract row and one final_data row per record, Kafka offsets per partition),
   never through the landing path, the primary key added after it in bulk (``ALTER TABLE … ADD
   PRIMARY KEY``); one DuckDB file per size and pattern, on a real disk (``--workdir``). The measured
   part is the real landing functions on realistic batches (5,000 webhooks; 10,000-record pages, half
   of them new versions of random existing ids, then the upsert; 200,000-message Arrow batches with
   1% bad ones). Each round is what one run does: open a fresh connection (the pull's with its
   ``PULL_DUCKDB_MEMORY_LIMIT``), land ``--batches`` batches, ``CHECKPOINT`` (the write the WAL
   deferred is part of the cost), close; a warm-up round on the empty file first. Rounds alternate
   between the sizes, so a burst of other load hits every size alike; rows/s is the median of the
   rounds, the ratio the median of the per-round ratios (rows/s at N over rows/s at 0 in the same
   round). A size whose round takes over ``--max-round-seconds`` gets no more rounds.
2. the SQLite inbox's file size (and its WAL's) while ``ingest webhook-receiver`` takes wrk's full
   rate for ``--duration`` seconds, sampled every ``--sample-every`` seconds. Between samples the
   bench lands what is pending as the sensor's runs would (claim, the asset's validate-and-land step,
   mark done) and runs retention (``Inbox.purge_done``, retention_job's step) with a ``--retention``
   window short enough to pass within the run; a tree without it is measured without and says so.
3. the tick of ``webhook_pending_sensor`` with 1, 100 and 1,000 sources pending (``--pending-per-source``
   rows each, beside ``--sensor-landed-rows`` landed ones), over a SQLite inbox and, when PostgreSQL's
   binaries are installed (or ``--postgres URL``), a PostgreSQL one; baseline: the 1-source tick.
4. the DuckDB file's bytes per million rows of each table (data and primary-key index), from the
   files of (1).

    uv run --no-sync python bench/bench_scale.py [--sizes 0,10M,50M] [--rounds 3] [--duration 600]
        [--inbox-minutes M] [--phases landing inbox sensor] [--patterns push pull poll] [--postgres URL]

Full size it takes ~25 minutes plus the sustained part (``--inbox-minutes 3``: 24 min on 2 shared
cores); figures and analysis in docs/scale.md.

Targets (issue: no poison pills, bounded growth, flat costs): landing rows/s at 50M >= 0.7 x rows/s
at 0, upserts included; the inbox stops growing once retention deletes (growth over the last third of
the run < 10%); the sensor tick under 2 s with 1,000 sources pending.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ingestion_devtools.mock_api.generator import CATEGORIES, FIRST_NAMES, LAST_NAMES, STATUSES
from ingestion_devtools.processes import ManagedProcess, free_port
from ingestion_patterns import warehouse
from ingestion_patterns.poll import landing as poll
from ingestion_patterns.pull import landing as pull
from ingestion_patterns.pull.validate import CONTRACT
from ingestion_patterns.push import landing as push

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from bench_webhooks import BENCH_LINE, LUA, ensure_wrk  # noqa: E402 - the sibling benchmark's wrk helpers

LANDING_TARGET = 0.7  # rows/s at the largest size / rows/s at 0
SENSOR_TARGET_SECONDS = 2.0  # a tick with 1,000 sources pending
INBOX_GROWTH_TARGET = 0.10  # growth over the last third of the sustained run, with retention on
MIB = 1024 * 1024


def parse_count(text: str) -> int:
    """``50M``, ``10k``, ``2500000`` -> int."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a row count: {text!r} (e.g. 0, 250k, 10M)")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def human(rows: int) -> str:
    if rows >= 1_000_000 and rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    if rows >= 1_000 and rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


def one(cursor: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The one row a statement returns."""
    row = cursor.fetchone()
    assert row is not None
    return row


def file_bytes(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


# ==================================================================================== 1. landing
#
# The history generators: ``grow(conn, start, stop)`` appends rows [start, stop) in bulk SQL.

_WEBHOOK_SOURCES = 20
_EVENT_TYPES = "['order.created', 'order.paid', 'order.shipped', 'refund.created', 'customer.updated']"


def grow_webhooks(conn: duckdb.DuckDBPyConnection, start: int, stop: int) -> None:
    """Landed webhooks as the receiver and the landing make them: random ids (``msg_`` + 32 hex,
    like a GUID or a signature id, so the (source_id, event_id) key lands anywhere in the index),
    the payload and headers the receiver keeps, one run id per 5,000."""
    conn.execute(f"""
        INSERT INTO ingestion.webhook_data
            (source_id, event_id, event_type, payload, headers, inbox_seq, received_at, landed_at, run_id)
        SELECT source_id, event_id, {_EVENT_TYPES}[(i % 5)::INTEGER + 1],
               ('{{"id":"' || event_id || '","timestamp":"' || strftime(received_at, '%Y-%m-%dT%H:%M:%S.%fZ')
                || '","data":{{"amount":' || ((h % 1000000) / 100)::DECIMAL(12, 2)
                || ',"currency":"' || ['EUR', 'USD', 'GBP'][(h % 3)::INTEGER + 1] || '"}}}}')::JSON,
               ('{{"content-type":"application/json","user-agent":"shop-webhooks/2.1","webhook-id":"'
                || event_id || '","webhook-timestamp":"' || epoch(received_at)::BIGINT || '"}}')::JSON,
               i + 1, received_at, received_at + INTERVAL 4 SECOND, printf('%08x-0000-4000-8000-%012x', hash(i // 5000) % 4294967296, i // 5000)
        FROM (
            SELECT i, hash(i) AS h,
                   'source-' || lpad((i % {_WEBHOOK_SOURCES})::VARCHAR, 2, '0') AS source_id,
                   'msg_' || md5(i::VARCHAR) AS event_id,
                   TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds(i * 500000) AS received_at
            FROM range({start}, {stop}) r(i)
        )
    """)


# The mock API's own vocabularies: history rows look like the records a pull lands.
_FIRST, _LAST, _STATUSES, _CATEGORIES = FIRST_NAMES, LAST_NAMES, STATUSES, CATEGORIES


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


_PULL_RECORDS = f"""
    SELECT i + 1 AS id,
           {_sql_list(_FIRST)}[(w % 16)::INTEGER + 1] || ' ' || {_sql_list(_LAST)}[((w >> 4) % 16)::INTEGER + 1] AS name,
           lower({_sql_list(_FIRST)}[(w % 16)::INTEGER + 1]) || '.' || lower({_sql_list(_LAST)}[((w >> 4) % 16)::INTEGER + 1])
               || (i + 1) || '@example.com' AS email,
           ((h % 10000000) / 100)::DOUBLE AS amount,
           {_sql_list(_STATUSES)}[((h >> 24) % 4)::INTEGER + 1] AS status,
           {_sql_list(_CATEGORIES)}[((h >> 28) % 8)::INTEGER + 1] AS category,
           1::BIGINT AS version,
           updated_at - to_microseconds(((h >> 32) % 86400000000)::BIGINT) AS created_at,
           updated_at
    FROM (
        SELECT i, hash(i) AS h, hash(i * 2 + 1) AS w,
               TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds(i * 500000) AS updated_at
        FROM range($start, $stop) r(i)
    )
"""


def grow_pull(conn: duckdb.DuckDBPyConnection, start: int, stop: int, page_size: int) -> None:
    """Records as the pull landed them: every one in raw_extract (its page, run and cursor) and in
    final_data, pull_pages for each page, the cursor and the load checkpoint at the last page.
    ``start`` and ``stop`` are multiples of the page size."""
    names = ", ".join(CONTRACT.names)
    bounds = {"start": start, "stop": stop}
    first_page, last_page = start // page_size + 1, stop // page_size
    conn.execute(
        f"""
        INSERT INTO ingestion.raw_extract (page_seq, run_id, page_cursor, extracted_at, {names})
        SELECT (id - 1) // {page_size} + 1, md5(((id - 1) // {page_size * 10})::VARCHAR)::UUID::VARCHAR,
               'c' || ((id - 1) // {page_size}), updated_at + INTERVAL 1 MINUTE, {names}
        FROM ({_PULL_RECORDS})
    """,
        bounds,
    )
    conn.execute(
        f"""
        INSERT INTO ingestion.final_data ({names}, loaded_at)
        SELECT {names}, updated_at + INTERVAL 2 MINUTE FROM ({_PULL_RECORDS})
    """,
        bounds,
    )
    conn.execute(f"""
        INSERT INTO ingestion.pull_pages (page_seq, run_id, page_no, page_cursor, next_cursor, record_count,
                                          schema_issues, backfill, landed_at)
        SELECT p, md5((p // 10)::VARCHAR)::UUID::VARCHAR, (p % 10)::INTEGER, 'c' || (p - 1), 'c' || p, {page_size},
               []::VARCHAR[], false, TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds(p * {page_size} * 500000)
        FROM range({first_page}, {last_page + 1}) r(p)
    """)
    # The sequence hands out page numbers after the history's (DuckDB has no ALTER SEQUENCE … RESTART).
    conn.execute(f"SELECT max(nextval('ingestion.pull_page_seq')) FROM range({last_page - first_page + 1})")
    updated_at, record_id = one(
        conn.execute("SELECT updated_at, id FROM ingestion.final_data ORDER BY updated_at DESC, id DESC LIMIT 1")
    )
    conn.execute(
        """
        INSERT INTO ingestion.pull_state (source, cursor_value, cursor_key, loaded_page_seq) VALUES (?, ?, ?, ?)
        ON CONFLICT (source) DO UPDATE SET cursor_value = excluded.cursor_value,
            cursor_key = excluded.cursor_key, loaded_page_seq = excluded.loaded_page_seq
    """,
        [pull.SOURCE, pull.cursor_text(updated_at), pull.cursor_text(record_id), last_page],
    )


KAFKA_TOPIC = "transactions"
KAFKA_PARTITIONS = 3


def grow_kafka(conn: duckdb.DuckDBPyConnection, start: int, stop: int) -> None:
    """Landed transactions: message i is offset i // 3 of partition i % 3; the stored offsets follow."""
    conn.execute(f"""
        INSERT INTO ingestion.kafka_events
            (topic, "partition", "offset", transaction_id, account_id, amount, currency, event_timestamp,
             merchant, channel, message_key, headers, message_timestamp, landed_at, run_id)
        SELECT '{KAFKA_TOPIC}', (i % {KAFKA_PARTITIONS})::INTEGER, i // {KAFKA_PARTITIONS},
               'txn-' || printf('%08x', (i // 1000000) * 2654435761 % 4294967296) || '-' || lpad(i::VARCHAR, 9, '0'),
               account_id,
               ((h % 250000) / 100)::DOUBLE, ['EUR', 'USD', 'GBP', 'CHF', 'JPY'][(h % 5)::INTEGER + 1], ts,
               ['grocer', 'airline', 'bookshop', 'pharmacy', 'cinema', 'hardware', 'bakery', 'taxi'][((h >> 8) % 8)::INTEGER + 1],
               ['card', 'online', 'transfer', 'atm'][((h >> 12) % 4)::INTEGER + 1],
               encode(account_id), []::STRUCT("key" VARCHAR, "value" BLOB)[], ts, ts + INTERVAL 3 SECOND,
               printf('%08x-0000-4000-8000-%012x', hash(i // 200000) % 4294967296, i // 200000)
        FROM (
            SELECT i, hash(i) AS h, 'acct-' || lpad((hash(i + 7) % 100000)::VARCHAR, 6, '0') AS account_id,
                   TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_microseconds(i * 100000) AS ts
            FROM range({start}, {stop}) r(i)
        )
    """)
    conn.execute(f"""
        INSERT INTO ingestion.kafka_offsets (topic, "partition", next_offset)
        SELECT '{KAFKA_TOPIC}', p, ({stop} - p + {KAFKA_PARTITIONS} - 1) // {KAFKA_PARTITIONS}
        FROM range({KAFKA_PARTITIONS}) r(p)
        ON CONFLICT (topic, "partition") DO UPDATE SET next_offset = excluded.next_offset
    """)


# The measured work: ``prepare(conn)`` builds a round's inputs (not timed), ``land(conn, work)`` lands
# them with the real functions (timed) and returns the rows it landed.


@dataclass
class Pattern:
    name: str
    table: str
    ddl: list[warehouse.DDLStep]
    other_tables: tuple[str, ...]  # tables of its file with real volume (their bytes are not the table's)
    grow: Callable[[duckdb.DuckDBPyConnection, int, int], None]
    prepare: Callable[[duckdb.DuckDBPyConnection], Any]
    land: Callable[[duckdb.DuckDBPyConnection, Any], int]
    setup: Callable[[duckdb.DuckDBPyConnection], None] = lambda conn: None
    describe: str = ""
    # A maintenance pass off the landing path, timed once per size after the rounds: (its name, a step
    # that prepares it, the pass itself returning how many rows it changed).
    maintenance: (
        tuple[str, Callable[[duckdb.DuckDBPyConnection], None], Callable[[duckdb.DuckDBPyConnection], int]] | None
    ) = None


def push_pattern(args: argparse.Namespace) -> Pattern:
    def prepare(conn: duckdb.DuckDBPyConnection) -> list[list[push.WebhookRow]]:
        now = datetime.now(UTC)
        seq = one(conn.execute("SELECT coalesce(max(inbox_seq), 0) FROM ingestion.webhook_data"))[0]
        batches = []
        for _ in range(args.batches):
            rows = []
            for _ in range(args.push_batch):
                seq += 1
                event_id = f"msg_{uuid.uuid4().hex}"
                payload = {
                    "id": event_id,
                    "timestamp": now.isoformat().replace("+00:00", "Z"),
                    "data": {"amount": round((seq * 7919) % 1_000_000 / 100, 2), "currency": "EUR"},
                }
                headers = {
                    "content-type": "application/json",
                    "user-agent": "shop-webhooks/2.1",
                    "webhook-id": event_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                }
                rows.append(
                    push.WebhookRow(
                        source_id=f"source-{seq % _WEBHOOK_SOURCES:02d}",
                        event_id=event_id,
                        event_type="order.paid",
                        payload=json.dumps(payload, separators=(",", ":")),
                        headers=json.dumps(headers, separators=(",", ":")),
                        inbox_seq=seq,
                        received_at=now,
                    )
                )
            batches.append(rows)
        return batches

    def land(conn: duckdb.DuckDBPyConnection, batches: list[list[push.WebhookRow]]) -> int:
        run_id = str(uuid.uuid4())
        landed = 0
        for rows in batches:
            result = push.land_webhook_batch(conn, rows, [], run_id=run_id)
            assert result.inserted == len(rows), result
            landed += result.inserted
        return landed

    def resend_past_the_window(conn: duckdb.DuckDBPyConnection) -> None:
        """1,000 landed events landed again under new inbox seqs, as events re-sent after the inbox forgot them."""
        conn.execute(
            "INSERT INTO ingestion.webhook_data SELECT * REPLACE (inbox_seq + 1000000000000 AS inbox_seq,"
            " current_timestamp AS landed_at) FROM (SELECT * FROM ingestion.webhook_data USING SAMPLE 1000 ROWS)"
        )

    from ingestion_patterns.maintenance.warehouse_retention import dedupe_webhook_data

    return Pattern(
        "push",
        push.DATA_TABLE,
        push.DDL,
        (),
        grow_webhooks,
        prepare,
        land,
        describe=f"{args.batches} x land_webhook_batch({args.push_batch:,} webhooks)",
        maintenance=(
            "dedupe_webhook_data (retention_job, hourly) after 1,000 re-sent events",
            resend_past_the_window,
            dedupe_webhook_data,
        ),
    )


def pull_page_ids(
    rng: random.Random, max_id: int, next_id: int, size: int, update_share: float
) -> tuple[list[int], int]:
    """A page's ids: ``update_share`` of them random existing ids (new versions), the rest new ids."""
    updates = min(int(size * update_share), max_id)
    existing = rng.sample(range(1, max_id + 1), updates) if updates else []
    fresh = list(range(next_id, next_id + size - updates))
    return existing + fresh, next_id + len(fresh)


def pull_pattern(args: argparse.Namespace, memory_limit: str) -> Pattern:
    rng = random.Random(7)

    def prepare(conn: duckdb.DuckDBPyConnection) -> list[pa.Table]:
        max_id = one(conn.execute("SELECT coalesce(max(id), 0) FROM ingestion.final_data"))[0]
        next_id = max_id + 1
        now_us = int(datetime.now(UTC).timestamp() * 1e6)
        pages, used = [], set()
        for page_no in range(args.batches):
            ids, next_id = pull_page_ids(rng, max_id, next_id, args.pull_page, args.update_share)
            ids = [i for i in ids if i not in used]  # one version per id per run
            used.update(ids)
            n = len(ids)
            h = [rng.getrandbits(62) for _ in range(n)]
            updated = [now_us + page_no * n + k for k in range(n)]  # the keyset order the API pages in
            first, last = [_FIRST[x % 16] for x in h], [_LAST[(x >> 4) % 16] for x in h]
            pages.append(
                pa.Table.from_arrays(
                    [
                        pa.array(ids, pa.int64()),
                        pa.array([f"{a} {b}" for a, b in zip(first, last, strict=True)]),
                        pa.array(
                            [
                                f"{a.lower()}.{b.lower()}{i}@example.com"
                                for a, b, i in zip(first, last, ids, strict=True)
                            ]
                        ),
                        pa.array([(x % 10_000_000) / 100 for x in h], pa.float64()),
                        pa.array([_STATUSES[(x >> 24) % 4] for x in h]),
                        pa.array([_CATEGORIES[(x >> 28) % 8] for x in h]),
                        pa.array([2 if i <= max_id else 1 for i in ids], pa.int64()),
                        pa.array([u - 86_400_000_000 for u in updated], pa.timestamp("us", tz="UTC")),
                        pa.array(updated, pa.timestamp("us", tz="UTC")),
                    ],
                    schema=CONTRACT,
                )
            )
        return pages

    def land(conn: duckdb.DuckDBPyConnection, pages: list[pa.Table]) -> int:
        run_id = str(uuid.uuid4())
        extracted_at = datetime.now(UTC)
        for page_no, page in enumerate(pages):
            pull.land_page(
                conn,
                run_id=run_id,
                page_no=page_no,
                page_cursor=f"p{page_no}",
                next_cursor=f"p{page_no + 1}",
                records=page,
                schema_issues=[],
                extracted_at=extracted_at,
            )
        result = pull.upsert_final(conn)
        assert result.inserted + result.updated == sum(p.num_rows for p in pages), result
        return result.inserted + result.updated

    def setup(conn: duckdb.DuckDBPyConnection) -> None:
        pull.limit_memory(conn, memory_limit)

    return Pattern(
        "pull",
        pull.FINAL_TABLE,
        pull.DDL,
        (pull.RAW_TABLE,),
        lambda conn, start, stop: grow_pull(conn, start, stop, args.pull_page),
        prepare,
        land,
        setup,
        describe=f"{args.batches} x land_page({args.pull_page:,} records, {args.update_share:.0%} updates)"
        f" + upsert_final; memory_limit {memory_limit or 'DuckDB default'}",
    )


def poll_pattern(args: argparse.Namespace) -> Pattern:
    from ingestion_devtools.kafka_producer import messages

    made = list(messages(args.kafka_batch, bad_ratio=0.01, keys=True, seed=11))
    keys = pa.array([m.key for m in made], pa.binary())
    values = pa.array([m.value for m in made], pa.binary())
    valid = sum(m.kind == "valid" for m in made)
    header_type = poll.INCOMING_SCHEMA.field("headers").type
    empty_headers = pa.ListArray.from_arrays(
        pa.array([0] * (len(made) + 1), pa.int32()), pa.array([], header_type.value_type)
    )
    partition = [i % KAFKA_PARTITIONS for i in range(len(made))]

    def prepare(conn: duckdb.DuckDBPyConnection) -> list[pa.Table]:
        offsets = poll.stored_offsets(conn, KAFKA_TOPIC)
        batches = []
        for _ in range(args.batches):
            offset = [offsets.get(p, 0) + i // KAFKA_PARTITIONS for i, p in enumerate(partition)]
            now_ms = int(time.time() * 1000)
            batches.append(
                pa.Table.from_arrays(
                    [
                        pa.array(partition, pa.int32()),
                        pa.array(offset, pa.int64()),
                        keys,
                        values,
                        empty_headers,
                        pa.array([now_ms] * len(made), pa.timestamp("ms", tz="UTC")),
                    ],
                    schema=poll.INCOMING_SCHEMA,
                )
            )
            for p in range(KAFKA_PARTITIONS):
                offsets[p] = max(o for o, q in zip(offset, partition, strict=True) if q == p) + 1
        return batches

    def land(conn: duckdb.DuckDBPyConnection, batches: list[pa.Table]) -> int:
        run_id = str(uuid.uuid4())
        landed = 0
        for batch in batches:
            result = poll.land_batch(conn, KAFKA_TOPIC, batch, run_id=run_id)
            assert result.events == valid and result.events + result.rejects == batch.num_rows, result
            landed += batch.num_rows  # events and rejects: every message landed somewhere
        return landed

    return Pattern(
        "poll",
        poll.EVENTS_TABLE,
        poll.DDL,
        (),
        grow_kafka,
        prepare,
        land,
        describe=f"{args.batches} x land_batch({args.kafka_batch:,} messages, 1% bad)",
    )


@dataclass
class Round:
    rows: int
    open_s: float
    land_s: float
    checkpoint_s: float
    close_s: float
    cpu_s: float  # this process's CPU (DuckDB's threads included) while landing and checkpointing

    @property
    def rate(self) -> float:
        return self.rows / (self.land_s + self.checkpoint_s)


@dataclass
class Storage:
    held: int  # rows of the pattern's table
    file_bytes: int
    used_bytes: int
    data_bytes: dict[str, int]  # per table: the column segments' blocks


@dataclass
class LevelResult:
    held: int
    rounds: list[Round] = field(default_factory=list)
    error: str = ""
    storage: Storage | None = None
    capped: bool = False  # a round took longer than --max-round-seconds: no more rounds at this size

    @property
    def rate(self) -> float:
        return statistics.median(r.rate for r in self.rounds) if self.rounds else float("nan")

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(r, attribute) for r in self.rounds) if self.rounds else float("nan")


def table_data_bytes(conn: duckdb.DuckDBPyConnection, table: str, block_size: int) -> int:
    """Bytes of the blocks that hold ``table``'s column segments (not its indexes)."""
    (blocks,) = one(
        conn.execute(f"""
        SELECT count(DISTINCT block) FROM (
            SELECT block_id AS block FROM pragma_storage_info('{warehouse.SCHEMA}.{table}') WHERE persistent
            UNION ALL
            SELECT unnest(additional_block_ids) FROM pragma_storage_info('{warehouse.SCHEMA}.{table}') WHERE persistent
        ) WHERE block >= 0
    """)
    )
    return blocks * block_size


def storage(path: Path, pattern: Pattern) -> Storage:
    with duckdb.connect(str(path), read_only=True) as conn:
        (block_size, used_blocks) = one(conn.execute("SELECT block_size, used_blocks FROM pragma_database_size()"))
        data = {table: table_data_bytes(conn, table, block_size) for table in (pattern.table, *pattern.other_tables)}
        held = warehouse.count_rows(conn, pattern.table)
    return Storage(held, file_bytes(path), used_blocks * block_size, data)


_PRIMARY_KEY = re.compile(r",\s*PRIMARY KEY \(([^)]*)\)\s*\)\s*$")


def deferred_key_ddl(pattern: Pattern) -> tuple[list[warehouse.DDLStep], str]:
    """The pattern's DDL with its table's PRIMARY KEY (if it has one) left out, and that key's
    columns: the history goes in first and the key's index is built once, in bulk, by ``ALTER TABLE
    … ADD PRIMARY KEY`` (inserting 50M random keys one by one into the ART takes several times
    longer). The table that results is the one the DDL makes: same columns, same primary key."""
    marker = f"{warehouse.SCHEMA}.{pattern.table} ("
    ddl: list[warehouse.DDLStep] = []
    key = ""
    for statement in pattern.ddl:
        match = _PRIMARY_KEY.search(statement) if isinstance(statement, str) else None
        if isinstance(statement, str) and marker in statement and match:
            statement, key = statement[: match.start()] + "\n)", match.group(1)
        ddl.append(statement)
    return ddl, key


def build_connection(path: Path, ddl: list[warehouse.DDLStep], memory_limit: str) -> duckdb.DuckDBPyConnection:
    conn = warehouse.connect(path, ddl=ddl)
    conn.execute("SET TimeZone = 'UTC'")
    if memory_limit:
        conn.execute(f"SET memory_limit = '{memory_limit}'")
    return conn


def add_primary_key(path: Path, pattern: Pattern, key: str, memory_limit: str) -> float:
    started = time.perf_counter()
    conn = build_connection(path, [], memory_limit)
    try:
        conn.execute(f"ALTER TABLE {warehouse.SCHEMA}.{pattern.table} ADD PRIMARY KEY ({key})")
        conn.execute("CHECKPOINT")
        (constraints,) = one(
            conn.execute(
                "SELECT count(*) FROM duckdb_constraints() WHERE schema_name = ? AND table_name = ?"
                " AND constraint_type = 'PRIMARY KEY'",
                [warehouse.SCHEMA, pattern.table],
            )
        )
        assert constraints == 1, f"{pattern.table} has {constraints} primary keys"
    finally:
        conn.close()
    return time.perf_counter() - started


def build_files(pattern: Pattern, sizes: list[int], workdir: Path, args: argparse.Namespace) -> dict[int, Path]:
    """One file per size. Size 0 is the DDL's empty tables; the others: one file grows size by size
    in bulk without the primary key, is copied aside at each size, and each copy gets its key."""
    ddl, key = deferred_key_ddl(pattern)
    files: dict[int, Path] = {}
    growing = workdir / f"{pattern.name}-growing.duckdb"
    conn = build_connection(growing, ddl, args.build_memory_limit)
    held = 0
    try:
        for size in sizes:
            path = files[size] = workdir / f"{pattern.name}-{human(size)}.duckdb"
            if size == 0:
                warehouse.connect(path, ddl=pattern.ddl).close()
                continue
            while held < size:
                stop = min(size, held + args.build_step)
                started = time.perf_counter()
                pattern.grow(conn, held, stop)
                conn.execute("CHECKPOINT")
                print(
                    f"    {pattern.table}: {human(held)} -> {human(stop)} rows in bulk, "
                    f"{time.perf_counter() - started:.1f} s",
                    flush=True,
                )
                held = stop
            conn.close()
            shutil.copyfile(growing, path)
            if size != sizes[-1]:
                conn = build_connection(growing, ddl, args.build_memory_limit)
            if key:
                seconds = add_primary_key(path, pattern, key, args.build_memory_limit)
                print(f"    {pattern.table}: primary key ({key}) over {human(size)} rows, {seconds:.1f} s", flush=True)
    finally:
        conn.close()
        growing.unlink(missing_ok=True)
        Path(f"{growing}.wal").unlink(missing_ok=True)
    return files


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_round(pattern: Pattern, path: Path) -> Round:
    """What one run does: a fresh connection, the batches, the checkpoint, close."""
    prepare_conn = warehouse.connect(path, ddl=pattern.ddl)
    try:
        work = pattern.prepare(prepare_conn)
    finally:
        prepare_conn.close()
    started = time.perf_counter()
    conn = warehouse.connect(path, ddl=pattern.ddl)
    try:
        pattern.setup(conn)
        opened, cpu = time.perf_counter(), cpu_seconds()
        rows = pattern.land(conn, work)
        landed = time.perf_counter()
        conn.execute("CHECKPOINT")
        checkpointed, cpu = time.perf_counter(), cpu_seconds() - cpu
    finally:
        conn.close()
    closed = time.perf_counter()
    return Round(rows, opened - started, landed - opened, checkpointed - landed, closed - checkpointed, cpu)


def measure_landing(pattern: Pattern, sizes: list[int], workdir: Path, args: argparse.Namespace) -> list[LevelResult]:
    print(
        f"\n[landing] {pattern.name}: ingestion.{pattern.table}: building {', '.join(map(human, sizes))} rows ...",
        flush=True,
    )
    files = build_files(pattern, sizes, workdir, args)
    results = {size: LevelResult(size) for size in sizes}
    try:
        for size, path in files.items():
            results[size].storage = storage(path, pattern)
        print(
            f"  measuring: {pattern.describe}; a warm-up round at 0, then {args.rounds} rounds alternating the sizes",
            flush=True,
        )
        for round_no in range(args.rounds + 1):
            for size, path in files.items():
                result = results[size]
                if result.error or result.capped or (round_no == 0 and size):
                    continue
                try:
                    measured = measure_round(pattern, path)
                except Exception as error:  # noqa: BLE001 - reported in the table, the other sizes go on
                    result.error = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
                    print(f"    {human(size):>5} rows: ERROR {result.error}", flush=True)
                    continue
                label = "warm-up" if round_no == 0 else f"round {round_no}"
                seconds = measured.open_s + measured.land_s + measured.checkpoint_s + measured.close_s
                if round_no:
                    result.rounds.append(measured)
                    result.capped = bool(size) and seconds > args.max_round_seconds and round_no < args.rounds
                print(
                    f"    {label:<8} {human(size):>5} rows: {measured.rate:>10,.0f} rows/s  (open {measured.open_s:.2f} s, "
                    f"land {measured.land_s:.2f} s, checkpoint {measured.checkpoint_s:.2f} s, "
                    f"close {measured.close_s:.2f} s, CPU {measured.cpu_s:.2f} s)"
                    f"{f'; over {args.max_round_seconds:g} s: no more rounds at this size' if result.capped else ''}",
                    flush=True,
                )
        if pattern.maintenance:
            name, before, maintain = pattern.maintenance
            print(f"  maintenance: {name}, one pass per size on its own connection", flush=True)
            for size, path in files.items():
                passes = []
                for _ in range(2):  # the first pass of a table, then the next one (it may keep a watermark)
                    with warehouse.connect(path, ddl=pattern.ddl) as conn:
                        before(conn)
                        conn.execute("CHECKPOINT")
                    with warehouse.connect(path, ddl=pattern.ddl) as conn:
                        started = time.perf_counter()
                        changed = maintain(conn)
                        conn.execute("CHECKPOINT")
                        passes.append(f"{time.perf_counter() - started:.2f} s ({changed:,} rows changed)")
                print(f"    {human(size):>5} rows: first pass {passes[0]}, next pass {passes[1]}", flush=True)
    finally:
        if not args.keep_files:
            for path in files.values():
                path.unlink(missing_ok=True)
                Path(f"{path}.wal").unlink(missing_ok=True)
    return [results[size] for size in sizes]


def landing_phase(args: argparse.Namespace, workdir: Path) -> dict[str, tuple[Pattern, list[LevelResult]]]:
    from ingestion_patterns.settings import load_settings

    memory_limit = (
        args.pull_memory_limit if args.pull_memory_limit is not None else load_settings().pull_duckdb_memory_limit
    )
    makers = {
        "push": lambda: push_pattern(args),
        "pull": lambda: pull_pattern(args, memory_limit),
        "poll": lambda: poll_pattern(args),
    }
    out = {}
    for name in args.patterns:
        pattern = makers[name]()
        out[name] = (pattern, measure_landing(pattern, args.sizes, workdir, args))
    return out


# ==================================================================================== 2. inbox


class Retention:
    """Inbox retention, when this tree has it (``Inbox.purge_done``, run hourly by ``retention_job``):
    delete the rows landed longer ago than the window. Looked up rather than imported, so the
    benchmark also measures a tree without it (and says so)."""

    METHOD = "purge_done"

    def __init__(self, seconds: float):
        from ingestion_patterns.push.inbox.sqlite import SQLiteInbox

        self.seconds = seconds
        self.available = callable(getattr(SQLiteInbox, self.METHOD, None))
        self.deleted = 0

    def describe(self) -> str:
        if not self.available:
            return f"NOT AVAILABLE (no SQLiteInbox.{self.METHOD} in this tree): measured without retention"
        return (
            f"on: Inbox.{self.METHOD}({self.seconds:.0f} s) at every sample (retention_job's step; "
            f"WEBHOOK_INBOX_RETENTION is 7 days, shortened here so the window passes within the run)"
        )

    async def apply(self, inbox) -> int:
        if not self.available:
            return 0
        result = await getattr(inbox, self.METHOD)(self.seconds)
        deleted = int(getattr(result, "deleted", result) or 0)
        self.deleted += deleted
        return deleted


@dataclass
class InboxSample:
    t: float
    accepted: int  # max(seq): rows ever accepted
    rows: int  # rows in the table now
    pending: int
    main_bytes: int
    wal_bytes: int
    free_bytes: int  # free pages inside the main file (reused before it grows)
    landed: int
    deleted: int

    @property
    def total_bytes(self) -> int:
        return self.main_bytes + self.wal_bytes


@dataclass
class InboxReport:
    retention: Retention
    duration: float
    workers: int
    samples: list[InboxSample]
    accepted_per_s: float
    wrk_line: str
    errors: int


def sample_inbox(path: Path, t: float, landed: int, deleted: int) -> InboxSample:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        accepted = conn.execute("SELECT coalesce(max(seq), 0) FROM webhook_inbox").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM webhook_inbox").fetchone()[0]
        pending = conn.execute("SELECT count(*) FROM webhook_inbox WHERE done_at IS NULL").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0] * page_size
    finally:
        conn.close()
    return InboxSample(
        t, accepted, rows, pending, file_bytes(path), file_bytes(Path(f"{path}-wal")), free, landed, deleted
    )


async def land_pending(inbox: Any, conn: duckdb.DuckDBPyConnection, deadline: float, batch_size: int) -> int:
    """Until ``deadline``: claim, validate, land and mark done what is pending, one run id per source
    and pass, as the sensor's runs would (polling again a second after the inbox was found empty),
    through the asset's own step (validate, land, isolate what DuckDB refuses); returns the rows landed."""
    from ingestion_patterns.push.assets import BatchRules, _validate_and_land

    landed = 0
    while time.monotonic() < deadline:
        before = landed
        for summary in await inbox.pending_sources():
            run_id = str(uuid.uuid4())
            while time.monotonic() < deadline:
                records = await inbox.claim(summary.source_id, batch_size, owner=run_id)
                if not records:
                    break
                await asyncio.to_thread(
                    _validate_and_land, conn, records, BatchRules.for_source(summary.source_id), run_id
                )
                await inbox.mark_done(summary.source_id, [r.seq for r in records], owner=run_id)
                landed += len(records)
        if landed == before:
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    return landed


async def sustained_inbox(args: argparse.Namespace, wrk: str, workdir: Path) -> InboxReport:
    from ingestion_patterns.push.inbox import open_inbox

    path = workdir / "inbox.sqlite3"
    url = f"sqlite:///{path}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    retention = Retention(args.retention)
    print(
        f"\n[inbox] receiver ({args.workers} worker(s), SQLite inbox) under wrk ({args.connections} connections) "
        f"for {args.duration:.0f} s, sampled every {args.sample_every:.0f} s; retention {retention.describe()}",
        flush=True,
    )
    receiver = ManagedProcess.ingest(
        "receiver-scale",
        "webhook-receiver",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--inbox",
        url,
        env={"PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics")},
        log_path=workdir / "receiver.log",
    )
    receiver.start()
    conn = warehouse.connect(workdir / "inbox-landing.duckdb", ddl=push.DDL)
    wrk_proc = None
    try:
        await asyncio.to_thread(receiver.wait_http, f"{base}/ready", 90)
        async with open_inbox(url) as inbox:
            wrk_proc = subprocess.Popen(
                [
                    wrk,
                    f"-t{min(2, args.connections)}",
                    f"-c{args.connections}",
                    f"-d{int(args.duration)}s",
                    "--timeout",
                    "5s",
                    "-s",
                    str(LUA),
                    f"{base}/webhook/bench",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "BENCH_RUN_TAG": f"scale-{time.time_ns()}"},
            )
            started = time.monotonic()
            landed = 0
            samples = [sample_inbox(path, 0.0, 0, 0)]
            next_at = started + args.sample_every
            while True:
                landed += await land_pending(inbox, conn, next_at, args.push_batch)
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                await retention.apply(inbox)
                finished = wrk_proc.poll() is not None
                current = await asyncio.to_thread(
                    sample_inbox, path, time.monotonic() - started, landed, retention.deleted
                )
                samples.append(current)
                print(
                    f"  t={current.t:>5.0f} s  accepted {current.accepted:>10,}  in inbox {current.rows:>10,}  "
                    f"pending {current.pending:>7,}  file {current.main_bytes / MIB:>8.1f} MiB  "
                    f"WAL {current.wal_bytes / MIB:>6.1f} MiB  free {current.free_bytes / MIB:>6.1f} MiB  "
                    f"deleted {current.deleted:>10,}",
                    flush=True,
                )
                if finished:
                    break
                next_at += args.sample_every
            output = wrk_proc.stdout.read() if wrk_proc.stdout else ""
    finally:
        if wrk_proc is not None and wrk_proc.poll() is None:
            wrk_proc.terminate()
            wrk_proc.wait()
        conn.close()
        receiver.stop()
    match = BENCH_LINE.search(output)
    figures = {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())} if match else {}
    rate = figures.get("accepted", 0) * 1e6 / figures["duration_us"] if figures else float("nan")
    errors = sum(figures.get(k, 0) for k in ("other", "errors_connect", "errors_timeout"))
    return InboxReport(
        retention, args.duration, args.workers, samples, rate, match.group(0) if match else output[-400:], errors
    )


# ==================================================================================== 3. sensor


@dataclass
class TickResult:
    backend: str
    sources: int
    tick_s: float  # median evaluation of the sensor
    query_s: float  # median of the inbox's pending_sources() alone (open, query, close)
    requests: int
    error: str = ""


def _inbox_rows(sources: int, pending_per_source: int, landed_rows: int) -> tuple[list[tuple], list[tuple]]:
    """(landed rows, pending rows) as (source_id, event_id, body, headers JSON, received_at unix s)."""
    now = time.time()
    body = b'{"id":"x","timestamp":"2026-01-01T00:00:00Z","data":{"amount":12.5,"currency":"EUR"}}'
    headers = '{"content-type":"application/json","user-agent":"wrk"}'
    landed = [
        (f"source-{i % sources:04d}", f"landed-{i}", body, headers, now - 3600 + i / 1000) for i in range(landed_rows)
    ]
    pending = [
        (f"source-{s:04d}", f"pending-{s}-{k}", body, headers, now - 60 + k)
        for s in range(sources)
        for k in range(pending_per_source)
    ]
    return landed, pending


def fill_sqlite_inbox(path: Path, sources: int, pending_per_source: int, landed_rows: int) -> str:
    from ingestion_patterns.push.inbox import open_inbox

    url = f"sqlite:///{path}"

    async def create() -> None:
        async with open_inbox(url):
            pass

    asyncio.run(create())
    landed, pending = _inbox_rows(sources, pending_per_source, landed_rows)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO webhook_inbox (source_id, event_id, body, headers, received_at, done_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(*row, row[-1] + 5) for row in landed],
        )
        conn.executemany(
            "INSERT INTO webhook_inbox (source_id, event_id, body, headers, received_at) VALUES (?, ?, ?, ?, ?)",
            pending,
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return url


def fill_postgres_inbox(url: str, sources: int, pending_per_source: int, landed_rows: int) -> str:
    import asyncpg

    from ingestion_patterns.push.inbox import open_inbox

    async def fill() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP TABLE IF EXISTS webhook_inbox")
        finally:
            await conn.close()
        async with open_inbox(url):
            pass
        landed, pending = _inbox_rows(sources, pending_per_source, landed_rows)
        conn = await asyncpg.connect(url)
        try:
            columns = ["source_id", "event_id", "body", "headers", "received_at", "done_at"]
            as_rows: list[tuple[Any, ...]] = [
                (s, e, b, h, datetime.fromtimestamp(r, UTC), datetime.fromtimestamp(r + 5, UTC))
                for s, e, b, h, r in landed
            ]
            as_rows += [(s, e, b, h, datetime.fromtimestamp(r, UTC), None) for s, e, b, h, r in pending]
            await conn.copy_records_to_table("webhook_inbox", records=as_rows, columns=columns)
            await conn.execute("ANALYZE webhook_inbox")
        finally:
            await conn.close()

    asyncio.run(fill())
    return url


def time_ticks(url: str, ticks: int) -> tuple[float, float, int]:
    import dagster as dg

    from ingestion_patterns.definitions import defs
    from ingestion_patterns.push.assets import _pending_sources
    from ingestion_patterns.push.resource import WebhookInboxResource

    webhook_pending_sensor = defs().resolve_sensor_def("webhook_pending_sensor")  # over the shipped sources' jobs
    resource = WebhookInboxResource(url=url)
    tick_times, query_times, requests = [], [], 0
    with dg.instance_for_test() as instance:
        for _ in range(ticks):
            with dg.build_sensor_context(instance=instance, resources={"webhook_inbox": resource}) as context:
                started = time.perf_counter()
                evaluation = webhook_pending_sensor.evaluate_tick(context)
                tick_times.append(time.perf_counter() - started)
            requests = len(evaluation.run_requests or [])
            started = time.perf_counter()
            asyncio.run(_pending_sources(resource))
            query_times.append(time.perf_counter() - started)
    return statistics.median(tick_times), statistics.median(query_times), requests


def start_postgres(workdir: Path):
    """A throw-away server from tests/postgres_server.py, or None when PostgreSQL is not installed."""
    sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
    try:
        from postgres_server import PostgresServer

        root = Path(tempfile.mkdtemp(prefix="bench-scale-pg-"))
        server = PostgresServer(root)
        server.start()
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        print(f"  PostgreSQL not available ({type(error).__name__}: {str(error)[:120]}): SQLite only", flush=True)
        return None
    return server


def sensor_phase(args: argparse.Namespace, workdir: Path) -> list[TickResult]:
    print(
        f"\n[sensor] webhook_pending_sensor: {', '.join(map(str, args.sources))} sources with "
        f"{args.pending_per_source} pending rows each, beside {args.sensor_landed_rows:,} landed rows; "
        f"median of {args.ticks} ticks",
        flush=True,
    )
    backends: list[tuple[str, Callable[[int], str]]] = [
        (
            "sqlite",
            lambda n: fill_sqlite_inbox(
                workdir / f"sensor-{n}-{time.monotonic_ns()}.sqlite3",
                n,
                args.pending_per_source,
                args.sensor_landed_rows,
            ),
        )
    ]
    server = None
    if args.postgres:
        postgres_url = args.postgres
    elif args.no_postgres:
        postgres_url = ""
    else:
        server = start_postgres(workdir)
        postgres_url = server.url if server else ""
    if postgres_url:
        backends.append(
            (
                "postgresql",
                lambda n: fill_postgres_inbox(postgres_url, n, args.pending_per_source, args.sensor_landed_rows),
            )
        )
    results = []
    try:
        for backend, fill in backends:
            for sources in args.sources:
                try:
                    url = fill(sources)
                    tick, query, requests = time_ticks(url, args.ticks)
                    result = TickResult(backend, sources, tick, query, requests)
                    if requests != sources:
                        result.error = f"{requests} run requests for {sources} sources"
                except Exception as error:  # noqa: BLE001 - reported in the table
                    result = TickResult(
                        backend, sources, float("nan"), float("nan"), 0, f"{type(error).__name__}: {str(error)[:160]}"
                    )
                results.append(result)
                print(
                    f"  {backend:<10} {sources:>5} sources: tick {result.tick_s * 1000:>8.1f} ms "
                    f"(pending_sources alone {result.query_s * 1000:.1f} ms), {result.requests} run requests"
                    f"{'  ' + result.error if result.error else ''}",
                    flush=True,
                )
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(server.root, ignore_errors=True)
        elif args.postgres:
            _drop_postgres_inbox(args.postgres)
    return results


def _drop_postgres_inbox(url: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP TABLE IF EXISTS webhook_inbox")
        finally:
            await conn.close()

    asyncio.run(drop())


# ==================================================================================== report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(args: argparse.Namespace, landing: dict, inbox: InboxReport | None, ticks: list[TickResult]) -> bool:
    ok = True
    print("\n" + "=" * 100)
    if landing:
        largest = max(args.sizes)
        print(
            "\nlanding rows/s: median of the rounds (a round = a fresh connection as a run opens one, the batches, "
            "CHECKPOINT; rows/s = rows / (land + checkpoint)). 'vs 0' = median of the per-round ratios (each round's "
            "figure over the baseline's of the same round, seconds apart); 'best' = best round over best baseline round; "
            "'CPU' = rows per CPU second over the baseline's"
        )
        print(
            f"{'table':<26}{'rows held':>10}{'rows/s':>10}{'vs 0':>7}{'best':>6}{'CPU':>6}{'land s':>8}{'ckpt s':>8}"
            f"{'open s':>7}{'close s':>8}  rounds (rows/s)"
        )
        for pattern, levels in landing.values():
            base = levels[0]
            for level in levels:
                label = f"{'ingestion.' + pattern.table if level is base else '':<26}{human(level.held):>10}"
                if level.error or not level.rounds or not base.rounds:
                    line = f"{label}  ERROR {level.error or 'no round measured'}"
                    ratio = float("nan")
                else:
                    ratio = statistics.median(r.rate / b.rate for r, b in zip(level.rounds, base.rounds, strict=False))
                    best = max(r.rate for r in level.rounds) / max(r.rate for r in base.rounds)
                    cpu = statistics.median(r.rows / r.cpu_s for r in level.rounds) / statistics.median(
                        r.rows / r.cpu_s for r in base.rounds
                    )
                    rounds = "/".join(f"{r.rate:,.0f}" for r in level.rounds)
                    line = (
                        f"{label}{level.rate:>10,.0f}{ratio:>7.2f}{best:>6.2f}{cpu:>6.2f}"
                        f"{level.median('land_s'):>8.2f}{level.median('checkpoint_s'):>8.2f}"
                        f"{level.median('open_s'):>7.2f}{level.median('close_s'):>8.2f}  {rounds}"
                        f"{' (capped)' if level.capped else ''}"
                    )
                if level.held == largest and level.held:
                    passed = not level.error and ratio >= LANDING_TARGET
                    ok &= passed
                    line += f"   {verdict(passed)} (target vs 0 >= {LANDING_TARGET} at {human(largest)})"
                print(line)
            print(f"{'':<26}  ({pattern.describe})")

        print(
            "\nDuckDB file size per million rows (checkpointed files; 'index' = used blocks not holding column data:"
            " the primary key's ART and metadata)"
        )
        print(f"{'table':<26}{'rows':>8}{'file MiB':>10}{'data MiB/M':>12}{'index MiB/M':>13}{'total MiB/M':>13}  note")
        for pattern, levels in landing.values():
            base = levels[0].storage
            for level in levels[1:]:
                s = level.storage
                if s is None or base is None or not s.held:
                    continue
                millions = (s.held - base.held) / 1e6
                data = (s.data_bytes[pattern.table] - base.data_bytes[pattern.table]) / MIB / millions
                others = sum(s.data_bytes[t] - base.data_bytes[t] for t in pattern.other_tables)
                total = (s.used_bytes - base.used_bytes - others) / MIB / millions
                note = (
                    (
                        f"file also holds {', '.join(pattern.other_tables)}: "
                        f"{others / MIB / millions:.0f} MiB/M, not counted"
                    )
                    if pattern.other_tables
                    else ""
                )
                print(
                    f"{'ingestion.' + pattern.table:<26}{human(s.held):>8}{s.file_bytes / MIB:>10,.0f}{data:>12.1f}"
                    f"{total - data:>13.1f}{total:>13.1f}  {note}"
                )

    if inbox is not None:
        samples = inbox.samples
        start = samples[0]
        cutoff = samples[-1].t * 2 / 3
        at_two_thirds = min(samples, key=lambda s: abs(s.t - cutoff))
        end = samples[-1]
        growth = (end.total_bytes - at_two_thirds.total_bytes) / max(1, at_two_thirds.total_bytes)
        at_one_third = min(samples, key=lambda s: abs(s.t - samples[-1].t / 3))
        early_rate = (at_one_third.total_bytes - start.total_bytes) / MIB / max(1e-9, at_one_third.t / 60)
        late_rate = (end.total_bytes - at_two_thirds.total_bytes) / MIB / max(1e-9, (end.t - at_two_thirds.t) / 60)
        per_row = end.total_bytes / max(1, end.rows)
        print(
            f"\nSQLite inbox during {inbox.duration:.0f} s at the receiver's full rate ({inbox.workers} worker(s)): "
            f"{inbox.accepted_per_s:,.0f} webhooks/s accepted, {inbox.errors} non-202/errors; "
            f"retention {inbox.retention.describe()}"
        )
        print(
            f"{'t s':>6}{'accepted':>12}{'in inbox':>12}{'pending':>9}{'landed':>12}{'deleted':>12}"
            f"{'file MiB':>10}{'WAL MiB':>9}{'free MiB':>9}"
        )
        for s in samples:
            print(
                f"{s.t:>6.0f}{s.accepted:>12,}{s.rows:>12,}{s.pending:>9,}{s.landed:>12,}{s.deleted:>12,}"
                f"{s.main_bytes / MIB:>10.1f}{s.wal_bytes / MIB:>9.1f}{s.free_bytes / MIB:>9.1f}"
            )
        print(
            f"growth: {early_rate:.1f} MiB/min over the first third, {late_rate:.1f} MiB/min over the last "
            f"({growth:+.1%}); {per_row:.0f} bytes per row held at the end (file + WAL, free pages included)"
        )
        passed = inbox.retention.available and growth < INBOX_GROWTH_TARGET
        ok &= passed
        reason = "" if inbox.retention.available else " (no retention in this tree: every landed row is kept)"
        print(
            f"target: bounded (growth over the last third < {INBOX_GROWTH_TARGET:.0%} with retention on): "
            f"{verdict(passed)}{reason}"
        )

    if ticks:
        print(
            f"\nwebhook_pending_sensor tick (median of {args.ticks}; {args.pending_per_source} pending rows per source,"
            f" {args.sensor_landed_rows:,} landed rows beside them)"
        )
        print(f"{'inbox':<12}{'sources':>8}{'tick ms':>10}{'vs 1':>8}{'query ms':>10}{'requests':>10}  target")
        for tick in ticks:
            base = next((t for t in ticks if t.backend == tick.backend and t.sources == min(args.sources)), tick)
            line = (
                f"{tick.backend:<12}{tick.sources:>8}{tick.tick_s * 1000:>10.1f}{tick.tick_s / base.tick_s:>8.2f}"
                f"{tick.query_s * 1000:>10.1f}{tick.requests:>10}"
            )
            if tick.sources == 1000 or tick.sources == max(args.sources):
                passed = not tick.error and tick.tick_s < SENSOR_TARGET_SECONDS
                ok &= passed
                line += f"  {verdict(passed)} (< {SENSOR_TARGET_SECONDS:.0f} s)"
            if tick.error:
                line += f"  {tick.error}"
            print(line)
    print()
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--phases", nargs="+", choices=["landing", "inbox", "sensor"], default=["sensor", "inbox", "landing"]
    )
    # landing
    parser.add_argument(
        "--sizes",
        type=lambda s: [parse_count(x) for x in s.split(",")],
        default=[0, 10_000_000, 50_000_000],
        help="rows each table holds before landing, comma-separated; the first is the baseline (0)",
    )
    parser.add_argument("--patterns", nargs="+", choices=["push", "pull", "poll"], default=["push", "pull", "poll"])
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per size (after one warm-up)")
    parser.add_argument("--batches", type=int, default=3, help="batches (pages for pull) landed per round")
    parser.add_argument(
        "--max-round-seconds",
        type=float,
        default=60,
        help="after a round longer than this, no more rounds at that size (its figure is that round's)",
    )
    parser.add_argument("--push-batch", type=int, default=5000, help="webhooks per land_webhook_batch")
    parser.add_argument("--pull-page", type=int, default=10_000, help="records per page")
    parser.add_argument("--update-share", type=float, default=0.5, help="share of a page that updates existing ids")
    parser.add_argument("--kafka-batch", type=int, default=200_000, help="messages per land_batch")
    parser.add_argument(
        "--pull-memory-limit",
        default=None,
        help="DuckDB memory_limit of the pull rounds (default: PULL_DUCKDB_MEMORY_LIMIT, as the asset)",
    )
    parser.add_argument("--build-memory-limit", default="8GB", help="DuckDB memory_limit while building the history")
    parser.add_argument("--build-step", type=parse_count, default=10_000_000, help="rows per bulk INSERT")
    parser.add_argument("--keep-files", action="store_true", help="keep the DuckDB files (in --workdir)")
    # inbox
    parser.add_argument("--duration", type=float, default=600, help="seconds of sustained load on the receiver")
    parser.add_argument("--inbox-minutes", type=float, help="the same in minutes (overrides --duration)")
    parser.add_argument("--sample-every", type=float, default=30, help="seconds between inbox samples")
    parser.add_argument(
        "--retention",
        type=float,
        default=None,
        help="seconds a landed row is kept, when retention exists (default: a quarter of the run)",
    )
    parser.add_argument("--workers", type=int, default=1, help="receiver gunicorn workers")
    parser.add_argument("--connections", type=int, default=32)
    # sensor
    parser.add_argument("--sources", type=lambda s: [int(x) for x in s.split(",")], default=[1, 100, 1000])
    parser.add_argument("--pending-per-source", type=int, default=5)
    parser.add_argument("--sensor-landed-rows", type=parse_count, default=500_000)
    parser.add_argument("--ticks", type=int, default=5)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="a PostgreSQL for the sensor's inbox (its webhook_inbox "
        "table is dropped); default: a throw-away server if PostgreSQL is installed",
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path.cwd(), help="where the files go (a real disk, not tmpfs)")
    args = parser.parse_args()
    if args.inbox_minutes is not None:
        args.duration = args.inbox_minutes * 60
    if args.retention is None:
        args.retention = args.duration / 4
    if args.sizes[0] != 0 or args.sizes != sorted(args.sizes):
        parser.error("--sizes must start at 0 (the baseline) and grow")
    if "pull" in args.patterns and any(size % args.pull_page for size in args.sizes):
        parser.error("--sizes must be multiples of --pull-page")

    started = time.monotonic()
    print(
        f"{os.cpu_count()} CPUs, shared with whatever else runs now; DuckDB {duckdb.__version__}; "
        f"read the ratios (each against a baseline from this run), not absolute figures",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.workdir))
    landing, inbox, ticks = {}, None, []
    try:
        if "sensor" in args.phases:
            ticks = sensor_phase(args, workdir)
        if "inbox" in args.phases:
            inbox = asyncio.run(sustained_inbox(args, ensure_wrk(), workdir))
        if "landing" in args.phases:
            landing = landing_phase(args, workdir)
    finally:
        if not args.keep_files:
            shutil.rmtree(workdir, ignore_errors=True)
    ok = report(args, landing, inbox, ticks)
    print(f"whole run: {(time.monotonic() - started) / 60:.1f} min")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
