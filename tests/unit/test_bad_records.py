"""Bad records on each landing path: the lone surrogate, 1e999, NaN and NUL cases, one by one, and the
core's isolation of a record DuckDB refuses (warehouse.land_isolating). docs/architecture.md, "Bad records"."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import duckdb
import orjson
import pyarrow as pa
import pytest

from ingestion_patterns import warehouse
from ingestion_patterns.poll import landing as poll_landing
from ingestion_patterns.pull import landing as pull_landing
from ingestion_patterns.pull.client import read_ndjson
from ingestion_patterns.pull.rest_api.client import read_json_records
from ingestion_patterns.pull.validate import assess_extract, conform
from ingestion_patterns.push import landing as push_landing
from ingestion_patterns.push.assets import BatchRules
from ingestion_patterns.push.inbox import InboxRecord
from ingestion_patterns.push.validate import compact_json, split_batch

AT = datetime(2026, 1, 1, tzinfo=UTC)

# The four cases every path must survive: (name, a JSON value's text).
LONE_SURROGATE = '"\\ud800"'
TOO_BIG = "1e999"
NAN = "NaN"
NUL = '"a\\u0000b"'


@pytest.fixture
def conn():
    connection = duckdb.connect()
    warehouse.ensure_schema(connection, [*push_landing.DDL, *pull_landing.DDL, *poll_landing.DDL])
    yield connection
    connection.close()


# ---------------------------------------------------------------------------- warehouse.land_isolating


class Refused(duckdb.ConversionException):
    pass


def test_isolation_lands_the_good_parts_in_order_and_rejects_each_refused_record():
    calls: list[tuple[str, list[int]]] = []

    def land(part):
        if any(item % 7 == 3 for item in part):
            raise Refused(f"Conversion Error: cannot take {part}\n\nLINE 1: the SQL")
        calls.append(("land", list(part)))
        return len(part)

    def reject(one, reason):
        calls.append(("reject", list(one)))
        assert reason.startswith("Conversion Error: cannot take [") and "LINE 1" not in reason
        return 0

    results = warehouse.land_isolating(duckdb.connect(), list(range(20)), land, reject)
    assert sum(results) == 20 - 3
    assert [items for kind, items in calls if kind == "reject"] == [[3], [10], [17]]
    landed_in_order = [item for _, items in calls for item in items]
    assert landed_in_order == list(range(20))  # every record once, in order: checkpoints only move forward


def test_isolation_costs_nothing_when_nothing_is_refused_and_slices_arrow_tables():
    table = pa.table({"n": list(range(10))})
    parts = []
    results = warehouse.land_isolating(
        duckdb.connect(),
        table,
        lambda part: parts.append(part) or part.num_rows,
        lambda one, reason: pytest.fail("nothing is refused"),
    )
    assert results == [10] and len(parts) == 1 and parts[0] is table

    def land(part):
        if 4 in part.column("n").to_pylist():
            raise duckdb.InvalidInputException("Invalid Input Error: Malformed JSON")
        return part.num_rows

    refused = []
    results = warehouse.land_isolating(duckdb.connect(), table, land, lambda one, reason: refused.append(one) or 0)
    assert sum(results) == 9 and [t.column("n").to_pylist() for t in refused] == [[4]]


@pytest.mark.parametrize(
    "error",
    [
        duckdb.ConstraintException("Duplicate key"),
        duckdb.IOException("disk full"),
        duckdb.BinderException("no such column"),
        RuntimeError("a bug"),
    ],
)
def test_isolation_does_not_turn_other_errors_into_rejects(error):
    def land(part):
        raise error

    with pytest.raises(type(error)):
        warehouse.land_isolating(duckdb.connect(), [1, 2, 3], land, lambda one, reason: pytest.fail("no reject"))


def test_isolation_gives_up_when_the_connection_is_gone():
    conn = duckdb.connect()

    def land(part):
        conn.close()
        raise duckdb.ConversionException("Conversion Error")

    with pytest.raises(duckdb.ConversionException):
        warehouse.land_isolating(conn, [1, 2], land, lambda one, reason: pytest.fail("no reject"))


# ---------------------------------------------------------------------------------------------- push


def _records(*bodies: bytes, headers: dict | None = None) -> list[InboxRecord]:
    return [InboxRecord(seq, "s", f"e{seq}", body, headers or {}, AT) for seq, body in enumerate(bodies, start=1)]


def _webhook(value: str) -> bytes:
    return ('{"timestamp": "2026-01-01T00:00:00Z", "data": ' + value + "}").encode()


def _land_push(conn, records, split=None):
    config = BatchRules.for_source("s")
    return push_landing.land_claimed(conn, records, split or (lambda part: split_batch(part, config)), run_id="r")


def _push_outcome(conn) -> dict[str, tuple[str, str]]:
    rows = conn.execute("SELECT event_id, 'row', payload::VARCHAR FROM ingestion.webhook_data").fetchall()
    rejects = conn.execute("SELECT event_id, 'reject', reason FROM ingestion.webhook_rejects").fetchall()
    return {event_id: (kind, text) for event_id, kind, text in rows + rejects}


@pytest.mark.parametrize(
    "value, kind, text",
    [
        (LONE_SURROGATE, "reject", "malformed JSON: no low surrogate"),
        (TOO_BIG, "reject", "malformed JSON: number is infinity"),
        (NAN, "reject", "malformed JSON"),
        (NUL, "row", '"data":"a\\u0000b"'),
    ],
)
def test_push_a_payload_accepted_before_the_edge_rule_lands_or_is_a_reject(conn, value, kind, text):
    rejected, result = _land_push(conn, _records(_webhook("1"), _webhook(value), _webhook("2")))
    outcome = _push_outcome(conn)
    assert outcome["e2"][0] == kind and text in outcome["e2"][1]
    assert outcome["e1"][0] == outcome["e3"][0] == "row"  # the records beside it are not held back
    assert (rejected, result.inserted + result.rejected) == (int(kind == "reject"), 3)


def test_push_lands_the_parsed_value_duplicate_keys_once_and_deep_nesting_whole(conn):
    deep = "[" * 1000 + "]" * 1000  # orjson writes 254 levels; the edge reads 1,024
    _land_push(conn, _records(b'{"timestamp": "2026-01-01", "data": 1, "data": 2}', _webhook(deep)))
    outcome = _push_outcome(conn)
    assert outcome["e1"] == ("row", '{"timestamp":"2026-01-01","data":2}')
    assert compact_json(orjson.loads(outcome["e2"][1])["data"]) == deep
    assert compact_json([[1.5, "é"], {"a": None}]) == orjson.dumps([[1.5, "é"], {"a": None}]).decode()


def test_push_headers_that_are_not_interchange_json_make_a_reject(conn):
    _land_push(conn, _records(_webhook("1"), headers={"x-github-event": "\udcff"}))
    kind, reason = _push_outcome(conn)["e1"]
    assert kind == "reject" and reason.startswith("headers are not interchange JSON")


def _old_split(records):
    """The landing as it was before the edge rule: json.dumps of what json.loads read (a lone
    surrogate passes, as an escape DuckDB's JSON cast refuses)."""
    rows = [
        push_landing.WebhookRow(
            r.source_id, r.event_id, None, json.dumps(json.loads(r.body)), "{}", r.seq, r.received_at
        )
        for r in records
    ]
    return rows, []


def test_push_a_payload_duckdb_refuses_is_isolated_and_kept_with_duckdbs_reason(conn):
    bodies = [b'{"n": %d}' % i for i in range(9)]
    bodies[5] = b'{"a": "\\ud800"}'
    rejected, result = _land_push(conn, _records(*bodies), split=_old_split)
    assert (result.inserted, result.rejected, result.refused, rejected) == (8, 1, 1, 1)
    kind, reason = _push_outcome(conn)["e6"]
    assert kind == "reject" and "Malformed JSON" in reason and "no low surrogate" in reason
    assert conn.execute("SELECT raw_body FROM ingestion.webhook_rejects").fetchone() == (bodies[5],)
    # Replayed (the inbox's mark_done was lost): nothing doubles, the refusal is found again.
    _, replay = _land_push(conn, _records(*bodies), split=_old_split)
    assert (replay.inserted, replay.rejected, replay.already_landed) == (0, 0, 9)


# ---------------------------------------------------------------------------------------------- pull


def _line(i: int, **fields) -> bytes:
    stamp = (AT + timedelta(minutes=i)).isoformat()
    record = {
        "id": i,
        "name": f"n{i}",
        "email": "e",
        "amount": 1.5,
        "status": "s",
        "category": "c",
        "version": 1,
        "created_at": stamp,
        "updated_at": stamp,
    }
    return json.dumps({**record, **fields}).encode()


def _with(i: int, name_value: str) -> bytes:
    return _line(i).replace(b'"name": "n%d"' % i, b'"name": ' + name_value.encode())


@pytest.mark.parametrize(
    "value, reason",
    [
        (LONE_SURROGATE, "malformed JSON: no low surrogate"),
        (TOO_BIG, "malformed JSON: number is infinity"),
        (NAN, "malformed JSON"),  # pyarrow's reader takes NaN; the page leaves its fast path
        ("Infinity", "malformed JSON"),
    ],
)
def test_pull_a_line_that_is_not_interchange_json_is_a_reject_and_the_page_lands(value, reason):
    body = b"\n".join([_line(1), _with(2, value), _line(3)]) + b"\n"
    table, rejects = read_ndjson(body)
    assert table.column("id").to_pylist() == [1, 3]
    assert [(r.raw, r.reason.startswith(reason)) for r in rejects] == [(_with(2, value), True)]


def test_pull_nul_in_a_string_lands_as_it_is():
    table, rejects = read_ndjson(_with(1, NUL) + b"\n")
    assert rejects == [] and table.column("name").to_pylist() == ["a\x00b"]


@pytest.mark.parametrize(
    "line, reason",
    [
        (b"null", "a JSON null, not an object"),  # first in a page, pyarrow's reader crashed the process on it
        (b"[1]", "a JSON array, not an object"),
        (b'{"id": 1} {"id": 2}', "malformed JSON"),  # pyarrow reads two records from this one line
        (b"\xef\xbb\xbf" + _line(7), "malformed JSON"),  # a byte order mark
        (_line(7).replace(b'"s"', b'"\xff"'), "not UTF-8"),  # pyarrow keeps bytes that are not UTF-8 in a string
    ],
)
def test_pull_a_line_that_is_no_interchange_object_is_a_reject(line, reason):
    script = (
        "import sys; from ingestion_patterns.pull.client import read_ndjson; "
        "t, r = read_ndjson(sys.stdin.buffer.read()); print(t.num_rows, [x.reason for x in r])"
    )
    body = line + b"\n" + _line(1) + b"\n"
    result = subprocess.run([sys.executable, "-c", script], input=body, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    rows, reasons = result.stdout.decode().split(" ", 1)
    assert rows == "1" and reason in reasons


def test_pull_a_record_whose_field_the_contract_cannot_hold_is_a_reject_not_a_failed_page():
    body = b"\n".join([_line(1), _line(2, amount="12.5"), _line(3, id=2**64), _line(4, name=["x"]), _line(5)])
    table, rejects = read_ndjson(body)
    assert table.column("id").to_pylist() == [1, 5]
    assert sorted(r.reason for r in rejects) == [
        "field 'amount' is a JSON string, expected a number",
        "field 'id' is a JSON number, expected an integer",
        "field 'name' is a JSON array, expected a string",
    ]


def test_pull_the_envelope_follows_the_same_rules():
    body = b'{"data": [' + _line(1) + b', {"id": 2, "amount": NaN}, {"id": "\\ud800"}, 5], "next_cursor": "c"}'
    table, rejects, found = read_json_records(body, "data", "next_cursor")  # a declared JSON source's reading
    assert table.column("id").to_pylist() == [1] and found == {"next_cursor": "c"}
    assert [r.reason.split(":")[0] for r in rejects] == [
        "malformed JSON",
        "malformed JSON",
        "a JSON number, not an object",
    ]


def _land_pull(conn, body: bytes, *, run_id: str = "r", cursor=None):
    table, rejects = read_ndjson(body)
    records, issues = conform(table)
    return pull_landing.land_page(
        conn,
        run_id=run_id,
        page_no=1,
        page_cursor=cursor,
        next_cursor=None,
        records=records,
        schema_issues=issues,
        extracted_at=AT,
        rejects=rejects,
    )


def test_pull_rejects_land_with_their_page_never_hold_the_cursor_back_and_are_kept_once(conn):
    body = b"\n".join([_line(1), _with(2, LONE_SURROGATE), _line(3), b'{"id": 4, "amount": 1e999}']) + b"\n"
    _land_pull(conn, body, cursor="page-1")
    assert pull_landing.read_cursor(conn) == pull_landing.PullCursor(AT + timedelta(minutes=3), 3)
    kept = conn.execute("SELECT raw_line, page_cursor, run_id FROM ingestion.pull_rejects").fetchall()
    assert set(kept) == {(b'{"id": 4, "amount": 1e999}', "page-1", "r"), (_with(2, LONE_SURROGATE), "page-1", "r")}

    summary = pull_landing.pending_summary(conn)
    assert summary["rejects"] == 2 and summary["rows"] == 2
    errors, warnings = assess_extract(summary, now=AT + timedelta(hours=1), max_age=timedelta(days=1))
    assert errors == [] and warnings[0].startswith("2 record(s) rejected")  # a warning: the load goes on

    # The next run fetches the last bad line again (the cursor cannot pass it): it is kept once.
    assert _land_pull(conn, b'{"id": 4, "amount": 1e999}\n', run_id="r2") is None
    assert conn.execute("SELECT count(*) FROM ingestion.pull_rejects").fetchone() == (2,)
    pull_landing.upsert_final(conn)
    assert pull_landing.pending_summary(conn)["rejects"] == 0


def test_pull_a_row_duckdb_refuses_is_isolated_and_kept_with_duckdbs_reason(conn):
    table, _ = read_ndjson(b"\n".join(_line(i) for i in range(1, 7)))
    records, issues = conform(table)
    # Text that is not UTF-8 in an Arrow string (a reader that does not check): DuckDB refuses it.
    names = records.column("name").to_pylist()
    data = b"".join(b"\xff\xfe" if i == 3 else n.encode() for i, n in enumerate(names))
    offsets = [0]
    for i, n in enumerate(names):
        offsets.append(offsets[-1] + (2 if i == 3 else len(n.encode())))
    broken = pa.Array.from_buffers(
        pa.string(), len(names), [None, pa.array(offsets, pa.int32()).buffers()[1], pa.py_buffer(data)]
    )
    records = records.set_column(records.schema.get_field_index("name"), "name", broken)
    pull_landing.land_page(
        conn,
        run_id="r",
        page_no=1,
        page_cursor=None,
        next_cursor=None,
        records=records,
        schema_issues=issues,
        extracted_at=AT,
    )
    assert conn.execute("SELECT list(id ORDER BY id) FROM ingestion.raw_extract").fetchone() == ([1, 2, 3, 5, 6],)
    raw, reason = conn.execute("SELECT raw_line, reason FROM ingestion.pull_rejects").fetchone()
    assert json.loads(raw)["id"] == 4 and "Invalid unicode" in reason
    assert pull_landing.read_cursor(conn).key == 6


# ---------------------------------------------------------------------------------------------- poll


def _transaction(amount: str = "12.5", transaction_id: str = '"txn-1"') -> bytes:
    fields = f'"transaction_id": {transaction_id}, "account_id": "acct-1", "amount": {amount}, "currency": "EUR"'
    return ("{" + fields + ', "timestamp": "2026-11-26T07:00:00+00:00"}').encode()


def _kafka_batch(values, timestamps=None):
    n = len(values)
    return pa.Table.from_arrays(
        [
            pa.array([0] * n, pa.int32()),
            pa.array(range(n), pa.int64()),
            pa.array([None] * n, pa.binary()),
            pa.array(values, pa.binary()),
            pa.array([[{"key": "h", "value": b"v"}]] * n, poll_landing.INCOMING_SCHEMA.field("headers").type),
            pa.array(timestamps or [1_764_140_400_000] * n, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        ],
        schema=poll_landing.INCOMING_SCHEMA,
    )


def _verdicts(conn) -> dict[int, str | None]:
    return dict(
        conn.execute(
            'SELECT "offset", NULL FROM ingestion.kafka_events UNION ALL '
            'SELECT "offset", reason FROM ingestion.kafka_rejects'
        ).fetchall()
    )


@pytest.mark.parametrize(
    "value, verdict",
    [
        (_transaction(amount=TOO_BIG), "amount is not a finite number"),  # landed as inf before
        (_transaction(amount="-1e999"), "amount is not a finite number"),
        (_transaction(amount=NAN), "amount is not a finite number"),
        (_transaction(amount="Infinity"), "amount is not a finite number"),
        (_transaction(transaction_id=LONE_SURROGATE), "malformed JSON"),  # DuckDB's json_valid is false
        (_transaction(transaction_id=NUL), None),
    ],
)
def test_poll_the_four_cases_get_their_verdict(conn, value, verdict):
    result = poll_landing.land_batch(conn, "t", _kafka_batch([_transaction(), value, _transaction()]))
    assert _verdicts(conn) == {0: None, 1: verdict, 2: None}
    assert result.next_offsets == {0: 3} and result.refused == 0
    if verdict is None:
        assert conn.execute('SELECT transaction_id FROM ingestion.kafka_events WHERE "offset" = 1').fetchone() == (
            "a\x00b",
        )


def test_poll_a_message_duckdb_refuses_is_isolated_and_its_partition_moves_on(conn):
    timestamps = [1_764_140_400_000] * 6
    timestamps[4] = 10**16  # a producer's timestamp past DuckDB's range: the Arrow scan refuses the batch
    result = poll_landing.land_batch(conn, "t", _kafka_batch([_transaction()] * 6, timestamps), run_id="r")
    assert (result.events, result.rejects, result.refused, result.next_offsets) == (5, 1, 1, {0: 6})
    offset, reason, raw, stamp, headers = conn.execute(
        'SELECT "offset", reason, raw_value, message_timestamp, headers FROM ingestion.kafka_rejects'
    ).fetchone()
    assert (offset, raw, stamp, headers) == (4, _transaction(), None, None)  # what DuckDB cannot hold is left out
    assert reason.startswith("Conversion Error: Could not convert")
    assert poll_landing.stored_offsets(conn, "t") == {0: 6}
    assert poll_landing.reject_reasons(conn, "t", "r") == {reason: 1}
