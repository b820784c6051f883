"""A declared topic's contract, landed through the same code as the shipped transactions topic:
typed columns from JSON paths, finite numbers, row checks, key and headers kept or not, and the
additive-only migration of its table (in-memory DuckDB, no broker)."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from ingestion_patterns import warehouse
from ingestion_patterns.poll import landing as wk
from ingestion_patterns.poll.contract import TopicContract
from ingestion_patterns.poll.source import KafkaTopicSpec
from ingestion_patterns.poll.validate import _transform_spec

COLUMNS: list[dict[str, Any]] = [
    {"name": "order_id", "type": "bigint", "path": "order.id", "required": True},
    {"name": "total", "type": "double", "path": "order.total", "required": True},
    {"name": "paid", "type": "boolean", "path": "paid"},
    {"name": "customer", "type": "varchar", "path": "customer-name"},
    {"name": "placed_at", "type": "timestamptz", "path": "placed_at"},
]
ORDERS: dict[str, Any] = {
    "name": "orders",
    "topic": "orders",
    "columns": COLUMNS,
    "checks": [{"sql": "total > 0", "reason": "total must be positive"}, {"sql": "order_id < 1000000"}],
    "keep_key": False,
    "keep_headers": False,
}


def contract(**changes) -> TopicContract:
    return TopicContract.of(KafkaTopicSpec.model_validate({**ORDERS, **changes}))


def batch(values: list[bytes | None]) -> pa.Table:
    n = len(values)
    return pa.Table.from_arrays(
        [
            pa.array([0] * n, pa.int32()),
            pa.array(range(n), pa.int64()),
            pa.array([b"k"] * n, pa.binary()),
            pa.array(values, pa.binary()),
            pa.array([[{"key": "h", "value": b"v"}]] * n, wk.INCOMING_SCHEMA.field("headers").type),
            pa.array([1_764_140_400_000] * n, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        ],
        schema=wk.INCOMING_SCHEMA,
    )


def order(**fields) -> bytes:
    value = {
        "order": {"id": 7, "total": 12.5},
        "paid": True,
        "customer-name": "Ada",
        "placed_at": "2026-11-26T07:00:00Z",
    }
    return json.dumps({**value, **fields}).encode()


@pytest.fixture
def conn():
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


CASES = [
    (order(), None),
    (order(paid=None, placed_at=None), None),  # optional, null
    (b'{"order": {"id": 8, "total": 1}}', None),  # optional, absent
    (b'{"order": {"id": 9}}', "missing field(s): order.total"),
    (b'{"order": {"id": 9, "total": NaN}}', "order.total is not a finite number"),
    (b'{"order": {"id": 9, "total": Infinity}}', "order.total is not a finite number"),
    (b'{"order": {"id": 9, "total": -Infinity}}', "order.total is not a finite number"),
    (b'{"order": {"id": 9, "total": 1e999}}', "order.total is not a finite number"),
    (b'{"order": {"id": 9, "total": "12"}}', "order.total is not a number"),
    (b'{"order": {"id": 9.5, "total": 1}}', "order.id is not an integer"),
    (b'{"order": {"id": 10000000000000000000, "total": 1}}', "order.id is out of the bigint range"),
    (order(paid="yes"), "paid is not a boolean"),
    (order(**{"customer-name": 5}), "not a string: customer-name"),
    (order(placed_at="soon"), "placed_at is not an ISO 8601 time"),
    (order(order={"id": 7, "total": 0}), "total must be positive"),
    (order(order={"id": 10_000_000, "total": 1}), "check failed: order_id < 1000000"),
    (b"[]", "not a JSON object"),
    (None, "no value (a tombstone)"),
]


def test_each_message_gets_its_verdict_in_the_declared_tables(conn):
    orders = contract()
    warehouse.ensure_schema(conn, orders.ddl)
    result = wk.land_batch(conn, "orders", batch([v for v, _ in CASES]), run_id="r", contract=orders)
    assert (result.events, result.rejects, result.next_offsets) == (3, len(CASES) - 3, {0: len(CASES)})
    verdicts = dict(
        conn.execute(
            'SELECT "offset", NULL FROM ingestion.orders UNION ALL SELECT "offset", reason FROM ingestion.orders_rejects'
        ).fetchall()
    )
    assert verdicts == {offset: reason for offset, (_, reason) in enumerate(CASES)}
    first = conn.execute(
        "SELECT order_id, total, paid, customer, placed_at FROM ingestion.orders ORDER BY 1"
    ).fetchone()
    assert first[:4] == (7, 12.5, True, "Ada") and first[4].year == 2026
    columns = [
        name
        for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'"
        ).fetchall()
    ]
    assert "message_key" not in columns and "headers" not in columns and "message_timestamp" in columns
    assert wk.reject_reasons(conn, "orders", "r", orders)["order.total is not a finite number"] == 4
    assert wk.landed_counts(conn, "orders", orders) == {"events": 3, "rejects": len(CASES) - 3}
    assert wk.stored_offsets(conn, "orders") == {0: len(CASES)}


def test_paths_one_json_transform_cannot_read_get_the_same_verdicts(conn):
    # "PAID" differs from "paid" in case only (DuckDB's struct names ignore case), and "order" is the parent of
    # order.id: such contracts read their values with json_extract_string instead of one json_transform.
    assert _transform_spec(contract(columns=[*COLUMNS, {"name": "o", "type": "varchar", "path": "order"}])) is None
    wider = contract(columns=[*COLUMNS, {"name": "paid_upper", "type": "boolean", "path": "PAID"}])
    assert _transform_spec(wider) is None and _transform_spec(contract()) is not None
    warehouse.ensure_schema(conn, wider.ddl)
    wk.land_batch(conn, "orders", batch([v for v, _ in CASES]), contract=wider)
    verdicts = dict(
        conn.execute(
            'SELECT "offset", NULL FROM ingestion.orders UNION ALL SELECT "offset", reason FROM ingestion.orders_rejects'
        ).fetchall()
    )
    assert verdicts == {offset: reason for offset, (_, reason) in enumerate(CASES)}
    assert conn.execute("SELECT count(paid_upper), count(paid) FROM ingestion.orders").fetchone() == (0, 1)


def test_an_added_optional_column_migrates_and_lands(conn):
    warehouse.ensure_schema(conn, contract().ddl)
    wk.land_batch(conn, "orders", batch([order()]), contract=contract())
    wider = contract(columns=[*ORDERS["columns"], {"name": "coupon", "type": "varchar"}])
    warehouse.ensure_schema(conn, wider.ddl)
    value = json.dumps({"order": {"id": 8, "total": 3}, "coupon": "X1"}).encode()
    part = batch([value]).set_column(1, "offset", pa.array([1], pa.int64()))
    wk.land_batch(conn, "orders", part, contract=wider)
    assert conn.execute("SELECT order_id, coupon FROM ingestion.orders ORDER BY 1").fetchall() == [(7, None), (8, "X1")]


@pytest.mark.parametrize(
    "columns, problem",
    [
        (COLUMNS[:-1], "column 'placed_at' is in ingestion.orders but no longer declared"),
        (
            [*COLUMNS[:-1], {"name": "placed_at", "type": "varchar"}],
            "column 'placed_at' is TIMESTAMP WITH TIME ZONE in ingestion.orders, declared VARCHAR",
        ),
        (
            [*COLUMNS[:-1], {"name": "placed_at", "type": "timestamptz", "required": True}],
            "column 'placed_at' is declared required, but ingestion.orders allows nulls",
        ),
        (
            [*ORDERS["columns"], {"name": "coupon", "type": "varchar", "required": True}],
            "column 'coupon' is new and required",
        ),
    ],
)
def test_any_other_contract_change_fails_naming_the_column(conn, columns, problem):
    warehouse.ensure_schema(conn, contract().ddl)
    with pytest.raises(warehouse.ContractChangeError, match=problem):
        warehouse.ensure_schema(conn, contract(columns=columns).ddl)


def test_the_shipped_transactions_contract_is_its_declaration():
    assert wk.TRANSACTIONS.events_table == "kafka_events" and wk.TRANSACTIONS.rejects_table == "kafka_rejects"
    assert [c.name for c in wk.EVENTS_COLUMNS][3:10] == [
        "transaction_id",
        "account_id",
        "amount",
        "currency",
        "event_timestamp",
        "merchant",
        "channel",
    ]


@pytest.mark.parametrize("value_format", ["json", "avro"])
def test_a_check_that_does_not_compile_fails_when_the_definitions_load(value_format):
    from ingestion_patterns.poll.assets import build_kafka_topic

    spec = KafkaTopicSpec.model_validate({**ORDERS, "value_format": value_format})
    build_kafka_topic(spec)  # compiles
    broken = spec.model_copy(
        update={
            "checks": [*spec.checks, *KafkaTopicSpec.model_validate({**ORDERS, "checks": [{"sql": "totl > 0"}]}).checks]
        }
    )
    with pytest.raises(ValueError, match=r"'orders': its contract does not compile: Binder Error.*totl"):
        build_kafka_topic(broken)
