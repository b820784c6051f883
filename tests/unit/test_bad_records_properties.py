"""Property: across the three landing paths, every record the edge accepts ends as exactly one row
or exactly one reject, and no landing fails, whatever the bytes (json_strategies: odd Unicode, NUL,
huge and tiny numbers, NaN/Infinity/1e999, lone surrogates, duplicate keys, deep nesting, damage).

Real landing functions on a real DuckDB file; the push path through a real SQLite inbox. The budget
is the Hypothesis profile's: "ci" by default (tests/conftest.py), HYPOTHESIS_PROFILE=long for more.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from json_strategies import (
    json_ish,
    pull_record_fields,
    transaction_fields,
    valid_pull_record,
    valid_transaction,
    valid_webhook,
    webhook_fields,
)

from ingestion_patterns import interchange_json, warehouse
from ingestion_patterns.poll import landing as poll_landing
from ingestion_patterns.pull import landing as pull_landing
from ingestion_patterns.pull.client import _read_line_by_line, read_ndjson
from ingestion_patterns.pull.validate import conform
from ingestion_patterns.push import landing as push_landing
from ingestion_patterns.push.assets import BatchRules
from ingestion_patterns.push.inbox import NewWebhook, open_inbox
from ingestion_patterns.push.validate import compact_json, split_batch, validate_payload

AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad-records")


@pytest.fixture(scope="module")
def warehouse_conn(workdir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """One DuckDB file for the module, with every pattern's tables; each example uses its own keys."""
    conn = warehouse.connect(
        workdir / "warehouse.duckdb", ddl=[*push_landing.DDL, *pull_landing.DDL, *poll_landing.DDL]
    )
    yield conn
    conn.close()


# ------------------------------------------------------------------------------------------ push

HEADERS = st.sampled_from(
    [
        {},
        {"x-github-event": "push", "content-type": "application/json"},
        {"user-agent": "a\x00b"},
        {"x-github-event": "\udcff"},  # a header byte that is not UTF-8, as aiohttp decodes it
    ]
)


@given(
    bodies=st.lists(json_ish(valid_webhook(), webhook_fields()), min_size=1, max_size=8),
    headers=HEADERS,
    validate_schema=st.booleans(),
)
def test_push_every_payload_in_the_inbox_ends_as_one_row_or_one_reject(
    workdir, warehouse_conn, bodies, headers, validate_schema
):
    source = f"s{uuid.uuid4().hex[:12]}"
    config = BatchRules.for_source(source, validate_schema=validate_schema)
    ids = [f"e{i}" for i in range(len(bodies))]

    async def through_the_inbox() -> int:
        async with open_inbox(f"sqlite:///{workdir / 'inbox.sqlite3'}") as inbox:
            await asyncio.gather(
                *(
                    inbox.put(NewWebhook(source, i, b, headers, AT.timestamp()))
                    for i, b in zip(ids, bodies, strict=True)
                )
            )
            records = await inbox.claim(source, 100, lease_seconds=60)
            assert len(records) == len(bodies)
            await asyncio.to_thread(
                push_landing.land_claimed,
                warehouse_conn,
                records,
                lambda part: split_batch(part, config),
                run_id=source,
            )
            await inbox.mark_done(source, [r.seq for r in records])
            return (await inbox.pending(source)).count

    assert asyncio.run(through_the_inbox()) == 0
    rows = dict(
        warehouse_conn.execute(
            "SELECT event_id, payload::VARCHAR FROM ingestion.webhook_data WHERE source_id = ?", [source]
        ).fetchall()
    )
    rejects = dict(
        warehouse_conn.execute(
            "SELECT event_id, reason FROM ingestion.webhook_rejects WHERE source_id = ?", [source]
        ).fetchall()
    )
    assert not rows.keys() & rejects.keys()
    assert rows.keys() | rejects.keys() == set(ids)
    event(f"push: {'some' if rows else 'no'} rows, {'some' if rejects else 'no'} rejects")
    for event_id, body in zip(ids, bodies, strict=True):
        payload, _ = validate_payload(body, config)
        if payload is None:
            assert event_id in rejects  # the edge's rule (or the source's) refuses it
        elif event_id in rows:  # what lands is the parsed value (the last of duplicate keys)
            assert compact_json(orjson.loads(rows[event_id])) == compact_json(interchange_json.loads(body))
        else:
            assert rejects[event_id].startswith("headers are not interchange JSON")


# ------------------------------------------------------------------------------------------ pull


def _segments(body: bytes) -> list[bytes]:
    return [line for line in body.split(b"\n") if line.strip()]


@given(lines=st.lists(json_ish(valid_pull_record(), pull_record_fields()), min_size=1, max_size=12))
def test_pull_every_line_of_a_page_ends_as_one_row_or_one_reject(warehouse_conn, lines):
    body = b"\n".join(lines) + b"\n"
    table, rejects = read_ndjson(body)
    segments = _segments(body)
    assert table.num_rows + len(rejects) == len(segments)
    event(f"pull: {'some' if table.num_rows else 'no'} rows, {'some' if rejects else 'no'} rejects")
    assert Counter(r.raw for r in rejects) <= Counter(segments)

    # The fast path (pyarrow over the page) decides exactly as the line-by-line reading would.
    slow_table, slow_rejects = _read_line_by_line(segments)
    assert Counter(r.raw for r in rejects) == Counter(r.raw for r in slow_rejects)
    records, issues = conform(table)
    slow_records, slow_issues = conform(slow_table)
    assert records.equals(slow_records) and issues == slow_issues

    run_id = uuid.uuid4().hex
    pull_landing.land_page(
        warehouse_conn,
        run_id=run_id,
        page_no=1,
        page_cursor=None,
        next_cursor=None,
        records=records,
        schema_issues=issues,
        advance_cursor=False,
        extracted_at=AT,
        tables=dataclasses.replace(pull_landing.SOURCE_API, source=run_id),
        rejects=rejects,
    )
    landed = warehouse_conn.execute("SELECT count(*) FROM ingestion.raw_extract WHERE run_id = ?", [run_id]).fetchone()
    kept = {raw for (raw,) in warehouse_conn.execute("SELECT raw_line FROM ingestion.pull_rejects").fetchall()}
    assert landed == (records.num_rows,)
    assert {r.raw for r in rejects} <= kept  # kept once per line, this run's or an earlier one's


# ------------------------------------------------------------------------------------------ poll

_SANE_TIMES = st.integers(min_value=0, max_value=4_102_444_800_000)
_EXTREME_TIMES = st.sampled_from([-1, 253_402_300_800_000, 10**16, -(2**62), 2**63 - 1])  # some past DuckDB's range
# Now and then (one in 25) a producer's timestamp DuckDB cannot hold.
TIMESTAMPS = st.integers(min_value=0, max_value=24).flatmap(lambda n: _EXTREME_TIMES if n == 0 else _SANE_TIMES)


@given(
    messages=st.lists(
        st.tuples(st.one_of(st.none(), json_ish(valid_transaction(), transaction_fields())), TIMESTAMPS),
        min_size=1,
        max_size=16,
    )
)
def test_poll_every_message_ends_as_one_event_or_one_reject(warehouse_conn, messages):
    topic = f"t{uuid.uuid4().hex[:12]}"
    n = len(messages)
    batch = pa.Table.from_arrays(
        [
            pa.array([0] * n, pa.int32()),
            pa.array(range(n), pa.int64()),
            pa.array([None] * n, pa.binary()),
            pa.array([value for value, _ in messages], pa.binary()),
            pa.array([[]] * n, poll_landing.INCOMING_SCHEMA.field("headers").type),
            pa.array([ms for _, ms in messages], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        ],
        schema=poll_landing.INCOMING_SCHEMA,
    )
    result = poll_landing.land_batch(warehouse_conn, topic, batch, run_id=topic)
    assert result.events + result.rejects == n
    event(f"poll: {'some' if result.events else 'no'} events, {'some' if result.refused else 'no'} refused by DuckDB")
    events = warehouse_conn.execute(
        'SELECT "offset", amount, transaction_id, account_id, currency, event_timestamp '
        "FROM ingestion.kafka_events WHERE topic = ?",
        [topic],
    ).fetchall()
    rejects = dict(
        warehouse_conn.execute(
            'SELECT "offset", reason FROM ingestion.kafka_rejects WHERE topic = ?', [topic]
        ).fetchall()
    )
    offsets = [row[0] for row in events] + list(rejects)
    assert sorted(offsets) == list(range(n))
    assert poll_landing.stored_offsets(warehouse_conn, topic) == {0: n}
    for _, amount, *fields in events:
        assert math.isfinite(amount) and amount >= 0 and None not in fields
    for offset, (value, _) in enumerate(messages):
        if value is not None and _has_lone_surrogate(value):
            assert offset in rejects


def _has_lone_surrogate(value: bytes) -> bool:
    try:
        interchange_json.loads(value)
    except interchange_json.NotInterchangeJson as error:
        return "surrogate" in str(error)
    return False
