"""Avro values in the Confluent wire format, decoded into declared Arrow columns.

A value is a magic byte ``0``, the writer schema's id (4 bytes, big-endian) and the Avro binary body
(Confluent's serializers, Apicurio's in its Confluent-compatible mode, Kafka Connect's Avro converter).
``SchemaRegistryClient`` fetches writer schemas by id from a registry's Confluent-compatible REST API
(``GET /schemas/ids/{id}``; Apicurio serves it under ``/apis/ccompat/v7``) and keeps them, parsed, by id:
an id names one schema for ever. ``AvroDecoder`` decodes a batch with fastavro, each value with its own
writer schema (and the declared reader schema, when there is one: Avro's schema resolution then applies,
defaults of added fields included), and maps fields by name to the declared columns; a field the writer
did not have lands as the column's default, else null. The result is column-aligned with the batch:
one Arrow table with the declared columns and a ``reason`` array that is null for a good record.

Nothing in a batch raises for one record: a value that is not in the wire format, names a schema id the
registry does not know (404), has a corrupt body, misses a required column, holds a value of another type
or a NaN or infinite number gets its reason. A registry that cannot be reached or answers 5xx raises
``RegistryUnavailable`` instead, so the run retries or fails before anything lands: those records are
never rejected for an outage and never dropped. No Dagster here: the component wraps it.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pyarrow as pa
import pyarrow.compute as pc
from fastavro import parse_schema, schemaless_reader

MAGIC_BYTE = 0
HEADER_SIZE = 5  # magic byte + 4-byte schema id
_FLOATS = (pa.float16(), pa.float32(), pa.float64())


class RegistryError(RuntimeError):
    """The registry refused what was asked for a reason a retry does not fix (e.g. 401/403)."""


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, timed out or answered 5xx: retry the batch (or fail the run);
    none of its records is rejected for it."""


@dataclass(frozen=True)
class WriterSchema:
    """A schema as the registry holds it under one id: parsed for fastavro, or why it cannot be used."""

    schema_id: int
    parsed: Any = None
    problem: str | None = None  # set when the id is unknown or the schema is not a usable Avro schema
    # The same schema with its top-level timestamp-millis/-micros fields read as plain longs (fastavro makes
    # no datetime per value; Arrow casts the column at once), and each such field's unit ("ms" or "us").
    raw_timestamps: Any = None
    timestamp_units: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, schema_id: int, schema: dict | str) -> WriterSchema:
        """A writer schema from its JSON (a dict, or its text)."""
        document = json.loads(schema) if isinstance(schema, str) else schema
        raw, units = _raw_timestamps(document)
        return cls(
            schema_id,
            parse_schema(document),
            raw_timestamps=parse_schema(raw) if units else None,
            timestamp_units=units,
        )


def wire_header(value: bytes | None) -> tuple[int | None, str | None]:
    """``(schema_id, None)`` for a value in the Confluent wire format, else ``(None, reason)``."""
    if value is None:
        return None, "not Confluent wire format: the value is null (a tombstone)"
    if len(value) < HEADER_SIZE:
        return None, f"not Confluent wire format: {len(value)} bytes, shorter than the 5-byte header"
    if value[0] != MAGIC_BYTE:
        return None, f"not Confluent wire format: magic byte is {value[0]}, expected 0"
    return int.from_bytes(value[1:HEADER_SIZE], "big"), None


def wire_headers(values: pa.Array | pa.ChunkedArray) -> list[tuple[int | None, str | None]]:
    """``wire_header`` of each value of an Arrow binary array: the distinct 5-byte heads read once each, in
    Arrow (a batch names a handful of schema ids), not one Python call per value."""
    heads = pc.binary_slice(values, 0, HEADER_SIZE)
    distinct = pc.unique(heads)
    parsed = [wire_header(head) for head in distinct.to_pylist()]
    return [parsed[i] for i in pc.index_in(heads, distinct, skip_nulls=False).to_pylist()]


def encode_wire(schema_id: int, body: bytes) -> bytes:
    """The wire-format value of an Avro ``body`` written with schema ``schema_id``."""
    return bytes([MAGIC_BYTE]) + schema_id.to_bytes(4, "big") + body


class SchemaRegistryClient:
    """Writer schemas by id from a Confluent-compatible REST API, cached (parsed) by id.

    ``url`` is the API's base, e.g. ``http://127.0.0.1:8081/apis/ccompat/v7`` for Apicurio. Transport
    errors and 5xx are retried ``retries`` times with a short backoff, then ``RegistryUnavailable``. A 404
    is cached as an unknown id for this client's life only when ``cache_unknown`` (off by default: an id
    not there yet may be registered in a moment by a producer whose write raced ahead)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 10.0,
        retries: int = 2,
        backoff_seconds: float = 0.25,
        headers: Mapping[str, str] | None = None,
        auth: aiohttp.BasicAuth | None = None,
        cache_unknown: bool = False,
    ):
        self.url = url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.retries, self.backoff_seconds = retries, backoff_seconds
        self.headers = {"Accept": "application/vnd.schemaregistry.v1+json, application/json", **(headers or {})}
        self.auth, self.cache_unknown = auth, cache_unknown
        self._cache: dict[int, WriterSchema] = {}
        self._session: aiohttp.ClientSession | None = None
        self.fetches = 0  # HTTP requests made (cache misses, retries included)

    async def aclose(self) -> None:
        """Close the HTTP session (``contextlib.aclosing(client)`` calls it)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def cached(self, schema_id: int) -> WriterSchema | None:
        return self._cache.get(schema_id)

    async def schemas(self, ids: Iterable[int]) -> dict[int, WriterSchema]:
        """Each id's writer schema: from the cache, the others fetched concurrently."""
        wanted = set(ids)
        missing = [i for i in wanted if i not in self._cache]
        if missing:
            fetched = await asyncio.gather(*(self._fetch(i) for i in missing))
            for schema in fetched:
                if schema.parsed is not None or self.cache_unknown:
                    self._cache[schema.schema_id] = schema
            found = {s.schema_id: s for s in fetched}
        else:
            found = {}
        return {i: self._cache.get(i) or found[i] for i in wanted}

    async def schema(self, schema_id: int) -> WriterSchema:
        return (await self.schemas([schema_id]))[schema_id]

    async def _fetch(self, schema_id: int) -> WriterSchema:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=self.headers, auth=self.auth)
        address = f"{self.url}/schemas/ids/{schema_id}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            self.fetches += 1
            try:
                async with self._session.get(address) as response:
                    body = await response.text()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                last = f"{type(error).__name__}: {error}"
                continue
            if status >= 500 or status == 429:
                last = f"HTTP {status}: {body[:200]}"
                continue
            if status == 404:
                return WriterSchema(schema_id, problem=f"schema id {schema_id} not in the registry")
            if status != 200:
                raise RegistryError(
                    f"schema registry at {self.url} refused schema id {schema_id}: HTTP {status} {body[:300]}"
                )
            return parse_writer_schema(schema_id, body)
        raise RegistryUnavailable(
            f"schema registry at {self.url} unavailable (schema id {schema_id}, {self.retries + 1} attempts): {last}"
        )


def parse_writer_schema(schema_id: int, body: str) -> WriterSchema:
    """A ``GET /schemas/ids/{id}`` answer -> the parsed schema, or the reason it cannot decode anything."""
    try:
        document = json.loads(body)
        kind = document.get("schemaType") or "AVRO"
        if kind != "AVRO":
            return WriterSchema(schema_id, problem=f"schema id {schema_id} is a {kind} schema, not Avro")
        if document.get("references"):
            return WriterSchema(schema_id, problem=f"schema id {schema_id} has schema references (not supported)")
        return WriterSchema.of(schema_id, document["schema"])
    except Exception as error:  # noqa: BLE001 - any defect of the stored schema is that id's reason
        return WriterSchema(schema_id, problem=f"schema id {schema_id} is not a usable Avro schema: {error}")


_UNITS = {"timestamp-millis": "ms", "timestamp-micros": "us"}


def _raw_timestamps(schema: Any) -> tuple[Any, dict[str, str]]:
    """``schema`` with the logical type taken off its top-level timestamp fields, and their units."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return schema, {}
    units: dict[str, str] = {}
    fields = []
    for item in schema["fields"]:
        kind = item["type"]
        branches = kind if isinstance(kind, list) else [kind]
        stamps = [b for b in branches if isinstance(b, dict) and b.get("logicalType") in _UNITS and b["type"] == "long"]
        if len(stamps) == 1:
            units[item["name"]] = _UNITS[stamps[0]["logicalType"]]
            plain = ["long" if b is stamps[0] else b for b in branches]
            item = {**item, "type": plain if isinstance(kind, list) else "long"}
        fields.append(item)
    return {**schema, "fields": fields}, units


@dataclass(frozen=True)
class AvroColumn:
    """A declared column: its name and Arrow type, the Avro field it comes from (a dotted path reaches into
    nested records; default: the column's name), whether a record without it is rejected, and the value
    when the writer's schema has no such field (default: null)."""

    name: str
    type: pa.DataType
    field: str | None = None
    required: bool = False
    default: Any = None

    @property
    def path(self) -> tuple[str, ...]:
        return tuple((self.field or self.name).split("."))


@dataclass
class DecodedBatch:
    """The declared columns of every record of a batch, in order, and each record's reason (null: good).
    A rejected record's columns hold what could be read; use only the rows whose reason is null."""

    table: pa.Table
    reasons: pa.Array
    schema_ids: list[int | None] = field(default_factory=list)

    @property
    def good(self) -> pa.Table:
        return self.table.filter(pc.is_null(self.reasons))

    @property
    def rejects(self) -> list[tuple[int, str]]:
        """(position in the batch, reason) of each rejected record."""
        return [(i, r) for i, r in enumerate(self.reasons.to_pylist()) if r is not None]


class AvroDecoder:
    """Decodes batches of wire-format values into ``columns``; optionally through a ``reader_schema``
    (Avro's resolution: added fields get their defaults, removed ones are dropped, promotions apply)."""

    def __init__(self, columns: Sequence[AvroColumn], reader_schema: dict | None = None):
        if not columns:
            raise ValueError("declare at least one column")
        names = [c.name for c in columns]
        if len(set(names)) != len(names):
            raise ValueError(f"column names repeat: {names}")
        self.columns = list(columns)
        self.reader_schema = parse_schema(reader_schema) if reader_schema is not None else None
        self.schema = pa.schema([pa.field(c.name, c.type) for c in self.columns])

    async def decode_batch(self, values: Sequence[bytes | None], registry: SchemaRegistryClient) -> DecodedBatch:
        """Decode ``values``, fetching the writer schemas the registry client has not cached yet.
        Raises ``RegistryUnavailable`` (nothing decoded) when the registry is down."""
        headers = [wire_header(v) for v in values]
        schemas = await registry.schemas({i for i, _ in headers if i is not None})
        return self.decode(values, schemas, headers)

    def decode(
        self,
        values: Sequence[bytes | None],
        schemas: Mapping[int, WriterSchema],
        headers: Sequence[tuple[int | None, str | None]] | None = None,
    ) -> DecodedBatch:
        """Decode ``values`` with the writer schemas given by id (every id the values name must be a key;
        ``SchemaRegistryClient.schemas`` gives them). Pure CPU: run it in a worker thread if need be."""
        if headers is None:
            headers = [wire_header(v) for v in values]
        reader_schema = self.reader_schema
        units = self._raw_units(schemas, {i for i, _ in headers if i is not None})
        reasons: list[str | None] = [None] * len(values)
        records: list[dict | None] = [None] * len(values)
        for position, (value, (schema_id, problem)) in enumerate(zip(values, headers, strict=True)):
            if problem is not None:
                reasons[position] = problem
                continue
            writer = schemas[schema_id]  # type: ignore[index]
            if writer.problem is not None:
                reasons[position] = writer.problem
                continue
            stream = io.BytesIO(value)  # type: ignore[arg-type]
            stream.seek(HEADER_SIZE)
            try:
                record = schemaless_reader(
                    stream, writer.raw_timestamps if units is not None else writer.parsed, reader_schema
                )
            except Exception as error:  # noqa: BLE001 - fastavro's reason, whatever the defect
                reasons[position] = f"corrupt Avro body (schema id {schema_id}): {type(error).__name__}: {error}"
                continue
            if (left := len(value) - stream.tell()) > 0:  # type: ignore[arg-type]
                reasons[position] = f"corrupt Avro body (schema id {schema_id}): {left} bytes left after the record"
                continue
            if not isinstance(record, dict):
                reasons[position] = f"schema id {schema_id} is not a record schema"
                continue
            records[position] = record
        arrays = self._columns(records, reasons, units or {})
        self._check(arrays, reasons)
        return DecodedBatch(
            table=pa.Table.from_arrays(arrays, schema=self.schema),
            reasons=pa.array(reasons, pa.string()),
            schema_ids=[i for i, _ in headers],
        )

    def _columns(
        self, records: list[dict | None], reasons: list[str | None], units: Mapping[str, str]
    ) -> list[pa.Array]:
        """The declared columns of ``records``. When every column is a top-level field without a default,
        Arrow converts the dicts in one pass (a struct array, flattened: no Python call per value); when a
        value does not fit, or a path is nested, column by column, so each misfit gets its reason."""
        keys = [column.path[0] for column in self.columns]
        direct = all(len(c.path) == 1 and c.default is None for c in self.columns) and len(set(keys)) == len(keys)
        if direct:
            read_as = [pa.int64() if c.name in units else c.type for c in self.columns]
            try:
                struct = pa.array(records, pa.struct([pa.field(k, t) for k, t in zip(keys, read_as, strict=True)]))
                return [
                    array if c.name not in units else array.cast(pa.timestamp(units[c.name], "UTC")).cast(c.type)
                    for c, array in zip(self.columns, struct.flatten(), strict=True)
                ]
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                pass  # some value does not fit its column: find which, below
        return [self._column(column, records, reasons, units.get(column.name)) for column in self.columns]

    def _raw_units(self, schemas: Mapping[int, WriterSchema], ids: set[int]) -> dict[str, str] | None:
        """When every writer of the batch reads the declared timestamp columns as plain longs of one unit
        each, those units by column name (the fast path); else None (fastavro makes the datetimes)."""
        writers = [schemas[i] for i in ids if schemas[i].problem is None]
        if self.reader_schema is not None or not writers or any(w.raw_timestamps is None for w in writers):
            return None
        units: dict[str, str] = {}
        for column in self.columns:
            if pa.types.is_timestamp(column.type) and len(column.path) == 1:
                found = {w.timestamp_units.get(column.path[0]) for w in writers}
                unit = found.pop() if len(found) == 1 else None
                if unit is None or column.default is not None:
                    return None
                units[column.name] = unit
        return units

    def _column(
        self, column: AvroColumn, records: list[dict | None], reasons: list[str | None], unit: str | None = None
    ) -> pa.Array:
        path, default = column.path, column.default
        if len(path) == 1:
            key = path[0]
            values = [None if r is None else r.get(key, default) for r in records]
        else:
            values = [None if r is None else _dig(r, path, default) for r in records]
        try:
            if unit is not None:  # longs since the epoch: one cast for the column
                return pa.array(values, pa.int64()).cast(pa.timestamp(unit, "UTC")).cast(column.type)
            return pa.array(values, column.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            pass
        # Some value does not fit the column's type: find which, reject them, land the others.
        read_as = column.type if unit is None else pa.timestamp(unit, "UTC")
        for position, value in enumerate(values):
            if value is None:
                continue
            try:
                pa.scalar(value, read_as).cast(column.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as error:
                values[position] = None
                if reasons[position] is None:
                    reasons[position] = f"{column.name}: {type(value).__name__} does not fit {column.type} ({error})"
        return pa.array(values, read_as).cast(column.type)

    def _check(self, arrays: list[pa.Array], reasons: list[str | None]) -> None:
        """Required columns present and numbers finite, column by column (vectorised)."""
        for column, array in zip(self.columns, arrays, strict=True):
            checks = []
            if column.required:
                checks.append((pc.is_null(array), f"{column.name} is required"))
            if array.type in _FLOATS:
                checks.append((pc.invert(pc.is_finite(array)), f"{column.name} is not a finite number"))
            for mask, reason in checks:
                if not pc.any(mask).as_py():
                    continue
                for position in pc.indices_nonzero(mask.fill_null(False)).to_pylist():
                    if reasons[position] is None:
                        reasons[position] = reason


def _dig(record: dict, path: tuple[str, ...], default: Any) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, dict):
            return None
        if key not in value:
            return default
        value = value[key]
    return value
