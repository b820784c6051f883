"""poll/avro.py without a registry: the wire format, decoding into columns, evolution, per-record reasons
(non-finite numbers among them), and the registry client's answers from a small in-process server."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math

import pyarrow as pa
import pytest
from aiohttp import web
from fastavro import parse_schema, schemaless_writer

from ingestion_devtools.processes import free_port
from ingestion_patterns.poll.avro import (
    AvroColumn,
    AvroDecoder,
    RegistryError,
    RegistryUnavailable,
    SchemaRegistryClient,
    WriterSchema,
    encode_wire,
    parse_writer_schema,
    wire_header,
    wire_headers,
)

V1 = {
    "type": "record",
    "name": "Payment",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "ratio", "type": "float", "default": 1.0},
        {"name": "note", "type": ["null", "string"], "default": None},
    ],
}
# v2: note (optional) removed, fee added with a default, a nested record added.
V2 = {
    **V1,
    "fields": [
        *V1["fields"][:3],
        {"name": "fee", "type": "long", "default": 5},
        {
            "name": "card",
            "type": ["null", {"type": "record", "name": "Card", "fields": [{"name": "last4", "type": "string"}]}],
            "default": None,
        },
    ],
}
SCHEMAS = {1: WriterSchema(1, parse_schema(V1)), 2: WriterSchema(2, parse_schema(V2))}
COLUMNS = [
    AvroColumn("id", pa.string(), required=True),
    AvroColumn("amount", pa.float64()),
    AvroColumn("ratio", pa.float32()),
    AvroColumn("note", pa.string()),
    AvroColumn("fee", pa.int64(), default=0),
    AvroColumn("last4", pa.string(), field="card.last4"),
]


def value(schema_id: int, record: dict) -> bytes:
    body = io.BytesIO()
    schemaless_writer(body, SCHEMAS[schema_id].parsed, record)
    return encode_wire(schema_id, body.getvalue())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\x00\x00\x00\x01\x02rest", (258, None)),
        (b"\x00\xff\xff\xff\xff", (2**32 - 1, None)),
        (None, (None, "not Confluent wire format: the value is null (a tombstone)")),
        (b"", (None, "not Confluent wire format: 0 bytes, shorter than the 5-byte header")),
        (b"\x00\x00\x01", (None, "not Confluent wire format: 3 bytes, shorter than the 5-byte header")),
        (b'{"id": 1}', (None, "not Confluent wire format: magic byte is 123, expected 0")),
        (b"\x01\x00\x00\x00\x01body", (None, "not Confluent wire format: magic byte is 1, expected 0")),
    ],
)
def test_wire_header(raw, expected):
    assert wire_header(raw) == expected


def test_wire_headers_of_an_arrow_column_are_each_value_s_wire_header():
    raws = [b"\x00\x00\x00\x01\x02rest", None, b"", b"\x00\x00\x01", b'{"id": 1}', b"\x00\x00\x00\x01\x02", None]
    column = pa.chunked_array([pa.array(raws[:3], pa.binary()), pa.array(raws[3:], pa.binary())])
    assert wire_headers(column) == [wire_header(raw) for raw in raws]


def test_encode_wire_is_the_inverse_of_wire_header():
    raw = encode_wire(70_000, b"abc")
    assert raw[:5] == b"\x00\x00\x01\x11\x70" and raw[5:] == b"abc"
    assert wire_header(raw) == (70_000, None)


def test_writer_versions_map_by_name_with_defaults_and_nested_paths():
    values = [
        value(1, {"id": "a", "amount": 1.5, "note": "hi"}),
        value(2, {"id": "b", "amount": 2.5, "fee": 7, "card": {"last4": "1234"}}),
        value(2, {"id": "c", "amount": 3.0}),
    ]
    result = AvroDecoder(COLUMNS).decode(values, SCHEMAS)
    assert result.rejects == []
    assert result.table.to_pylist() == [
        {"id": "a", "amount": 1.5, "ratio": 1.0, "note": "hi", "fee": 0, "last4": None},  # fee: the column's default
        {"id": "b", "amount": 2.5, "ratio": 1.0, "note": None, "fee": 7, "last4": "1234"},
        {"id": "c", "amount": 3.0, "ratio": 1.0, "note": None, "fee": 5, "last4": None},  # fee: v2's default
    ]
    assert result.schema_ids == [1, 2, 2]


def test_a_reader_schema_resolves_every_writer_version():
    reader = {**V2, "fields": [*V2["fields"], {"name": "note", "type": ["null", "string"], "default": "none"}]}
    values = [value(1, {"id": "a", "amount": 1.5, "note": "hi"}), value(2, {"id": "b", "amount": 2.5})]
    result = AvroDecoder(COLUMNS, reader_schema=reader).decode(values, SCHEMAS)
    assert result.rejects == []
    assert result.table.column("fee").to_pylist() == [5, 5]  # the reader's default for v1's record
    assert result.table.column("note").to_pylist() == ["hi", "none"]


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_rejected_with_a_reason(number):
    values = [
        value(1, {"id": "ok", "amount": 1.0}),
        value(1, {"id": "double", "amount": number}),
        value(1, {"id": "float", "amount": 2.0, "ratio": number}),
    ]
    result = AvroDecoder(COLUMNS).decode(values, SCHEMAS)
    assert result.rejects == [(1, "amount is not a finite number"), (2, "ratio is not a finite number")]
    assert result.good.column("id").to_pylist() == ["ok"]


def test_every_defect_is_one_record_s_reason_and_the_batch_goes_on():
    good = value(1, {"id": "a", "amount": 1.0})
    values = [
        good,
        b"plain text",
        encode_wire(9, good[5:]),
        good[:8],  # cut inside the body
        good + b"\x00\x00",  # bytes after the record
        value(1, {"id": "", "amount": 2.0}),
        good,
    ]
    schemas = {**SCHEMAS, 9: WriterSchema(9, problem="schema id 9 not in the registry")}
    reasons = AvroDecoder(COLUMNS).decode(values, schemas).reasons.to_pylist()
    assert reasons[0] is None and reasons[5] is None and reasons[6] is None
    assert reasons[1] == "not Confluent wire format: magic byte is 112, expected 0"
    assert reasons[2] == "schema id 9 not in the registry"
    assert reasons[3].startswith("corrupt Avro body (schema id 1): ")
    assert reasons[4] == "corrupt Avro body (schema id 1): 2 bytes left after the record"


def test_a_value_of_another_type_and_a_missing_required_column_are_rejected():
    columns = [AvroColumn("id", pa.int64()), AvroColumn("missing", pa.string(), required=True)]
    result = AvroDecoder(columns).decode([value(1, {"id": "x", "amount": 1.0})], SCHEMAS)
    (reason,) = result.reasons.to_pylist()
    assert reason.startswith("id: str does not fit int64")
    only_required = AvroDecoder([AvroColumn("missing", pa.string(), required=True)])
    assert only_required.decode([value(1, {"id": "x", "amount": 1.0})], SCHEMAS).rejects == [(0, "missing is required")]


def test_top_level_columns_convert_in_one_pass_and_a_misfit_falls_back_to_its_reason():
    # Every column a top-level field without a default: Arrow converts the records at once.
    columns = [AvroColumn("id", pa.string(), required=True), AvroColumn("amount", pa.float64())]
    columns += [AvroColumn("ratio", pa.float32()), AvroColumn("note", pa.string())]
    good = [value(1, {"id": "a", "amount": 1.5, "note": "hi"}), value(2, {"id": "b", "amount": 2.5, "fee": 7})]
    values = [good[0], b"plain text", good[1], None]
    result = AvroDecoder(columns).decode(values, SCHEMAS)
    assert result.reasons.to_pylist()[1::2] == [
        "not Confluent wire format: magic byte is 112, expected 0",
        "not Confluent wire format: the value is null (a tombstone)",
    ]
    assert result.good.to_pylist() == [
        {"id": "a", "amount": 1.5, "ratio": 1.0, "note": "hi"},
        {"id": "b", "amount": 2.5, "ratio": 1.0, "note": None},
    ]
    # A value that does not fit its column: column by column, that record rejected, the others kept.
    as_number = [AvroColumn("id", pa.string()), AvroColumn("note", pa.int64())]
    mixed = [value(1, {"id": "a", "amount": 1.0, "note": "x"}), value(1, {"id": "b", "amount": 1.0})]
    result = AvroDecoder(as_number).decode(mixed, SCHEMAS)
    assert [(i, r.split(" (")[0]) for i, r in result.rejects] == [(0, "note: str does not fit int64")]
    assert result.good.to_pylist() == [{"id": "b", "note": None}]


def test_parse_writer_schema_names_what_cannot_decode():
    assert parse_writer_schema(4, json.dumps({"schema": json.dumps(V1)})).parsed is not None
    assert parse_writer_schema(4, json.dumps({"schema": "{}", "schemaType": "PROTOBUF"})).problem == (
        "schema id 4 is a PROTOBUF schema, not Avro"
    )
    assert "not a usable Avro schema" in (
        parse_writer_schema(4, '{"schema": "{\\"type\\": \\"nope\\"}"}').problem or ""
    )


def test_registry_client_answers_caches_and_outages():
    """404 -> the id's reason; 200 -> parsed and cached; 5xx and a closed port -> RegistryUnavailable;
    401 -> RegistryError (not retried as an outage)."""
    calls: list[int] = []

    async def schema_by_id(request: web.Request) -> web.Response:
        schema_id = int(request.match_info["id"])
        calls.append(schema_id)
        if schema_id == 1:
            return web.json_response({"schema": json.dumps(V1)})
        if schema_id == 503:
            return web.Response(status=503, text="overloaded")
        if schema_id == 401:
            return web.Response(status=401, text="who are you")
        return web.json_response({"error_code": 40403, "message": "not found"}, status=404)

    async def scenario() -> None:
        app = web.Application()
        app.router.add_get("/schemas/ids/{id}", schema_by_id)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            client = SchemaRegistryClient(f"http://127.0.0.1:{port}/", retries=1, backoff_seconds=0.01)
            async with contextlib.aclosing(client):
                found = await client.schemas([1, 2])
                assert found[1].parsed is not None and found[2].problem == "schema id 2 not in the registry"
                await client.schemas([1])
                assert calls.count(1) == 1  # cached by id
                with pytest.raises(RegistryUnavailable, match="HTTP 503"):
                    await client.schema(503)
                assert calls.count(503) == 2  # retried once
                with pytest.raises(RegistryError, match="HTTP 401") as refused:
                    await client.schema(401)
                assert not isinstance(refused.value, RegistryUnavailable)
        finally:
            await runner.cleanup()
        async with contextlib.aclosing(SchemaRegistryClient(f"http://127.0.0.1:{free_port()}", retries=0)) as down:
            with pytest.raises(RegistryUnavailable, match="unavailable"):
                await AvroDecoder(COLUMNS).decode_batch([encode_wire(1, b"")], down)

    asyncio.run(scenario())


def test_timestamps_read_as_longs_match_fastavro_s_datetimes_whatever_the_writers_units():
    from datetime import UTC, datetime

    def stamped(unit: str) -> dict:
        kind = {"type": "long", "logicalType": f"timestamp-{unit}"}
        return {"type": "record", "name": "E", "fields": [{"name": "at", "type": ["null", kind], "default": None}]}

    millis, micros = WriterSchema.of(1, stamped("millis")), WriterSchema.of(2, stamped("micros"))
    assert millis.timestamp_units == {"at": "ms"} and micros.timestamp_units == {"at": "us"}
    when = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)

    def encoded(writer: WriterSchema, at) -> bytes:
        body = io.BytesIO()
        schemaless_writer(body, writer.parsed, {"at": at})
        return encode_wire(writer.schema_id, body.getvalue())

    decoder = AvroDecoder([AvroColumn("at", pa.timestamp("us", tz="UTC"))])
    schemas = {1: millis, 2: micros}
    for values in ([encoded(millis, when), encoded(millis, None)], [encoded(millis, when), encoded(micros, when)]):
        result = decoder.decode(values, schemas)  # one unit: longs cast at once; two: fastavro's datetimes
        assert result.rejects == []
        assert result.table.column("at").to_pylist()[0] == when
