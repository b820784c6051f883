"""A topic's contract and its checks: one vectorised SQL pass over an Arrow batch.

``judge_sql(contract)`` is the statement that judges every message of the incoming batch
(``kafka_incoming``) into a temporary table ``kafka_judged``, which ``landing.land_batch`` splits into
events and rejects, each reject with its reason. A JSON value is decoded, parsed and typed with
DuckDB's JSON functions, never row by row in Python; an Avro value arrives already decoded
(``avro.AvroDecoder``: the declared columns and a reason beside the raw message). Either way the
declared row checks (SQL predicates over the typed columns) then run in the same pass.

The JSON rule is DuckDB's reader plus the interchange rules it does not apply itself: a lone
surrogate makes ``json_valid`` false (malformed JSON), but ``NaN``, ``Infinity`` and numbers too large
for a double (``1e999``) are read as numbers, so every number column must be finite. A duplicate key
keeps its first value in DuckDB's JSON functions (the edges' rule, orjson's, keeps the last). The reasons
name the field as the message spells it (its path): ``missing field(s): a, b``, ``not a string: c``,
``amount is not a number``, ``amount is not a finite number``, ``timestamp is not an ISO 8601 time``.
"""

from __future__ import annotations

import json
import re

from ..warehouse import SQL_TYPES
from .contract import TopicContract
from .source import ContractColumn

# json_type() names of JSON numbers: integers by sign and size, then floating point.
_NUMBER_TYPES = "'UBIGINT', 'BIGINT', 'DOUBLE', 'HUGEINT'"
_INTEGER_TYPES = "'UBIGINT', 'BIGINT', 'HUGEINT'"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The column of the incoming batch that holds an Avro value's decoding reason (null: decoded).
DECODE_REASON = "_reason"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def json_path(path: str) -> str:
    """A dotted path as a DuckDB JSON path: ``a.b`` -> ``$.a.b`` (keys that are no identifiers quoted)."""
    keys = (key if _IDENTIFIER.match(key) else f'"{key}"' for key in path.split("."))
    return _quoted("$." + ".".join(keys))


def _type_reasons(index: int, column: ContractColumn) -> list[tuple[str, str]]:
    """(condition, reason) of a present value of the wrong JSON type, for one column (``_t[index]``, and its
    value ``_v{index}``: typed already, or its text)."""
    t, v, field = f"_t[{index}]", f"_v{index}", column.source_path
    if column.type == "double":
        return [
            (f"{t} NOT IN ({_NUMBER_TYPES}, 'NULL')", f"{field} is not a number"),
            # DuckDB's JSON reader takes NaN, Infinity and 1e999 (as inf), which are no JSON numbers
            (
                f"{t} <> 'NULL' AND NOT coalesce(isfinite(TRY_CAST({v} AS DOUBLE)), false)",
                f"{field} is not a finite number",
            ),
        ]
    if column.type == "bigint":
        return [
            (f"{t} NOT IN ({_INTEGER_TYPES}, 'NULL')", f"{field} is not an integer"),
            (f"{t} <> 'NULL' AND TRY_CAST({v} AS BIGINT) IS NULL", f"{field} is out of the bigint range"),
        ]
    if column.type == "boolean":
        return [(f"{t} NOT IN ('BOOLEAN', 'NULL')", f"{field} is not a boolean")]
    if column.type == "timestamptz":
        return [(f"{t} = 'VARCHAR' AND TRY_CAST({v} AS TIMESTAMPTZ) IS NULL", f"{field} is not an ISO 8601 time")]
    return []  # varchar: any string (the 'not a string' list covers the rest)


def _json_reason(contract: TopicContract) -> str:
    """Why a JSON message does not meet the contract's columns, or NULL (the row checks come after)."""
    at = {column.name: i + 1 for i, column in enumerate(contract.columns)}  # SQL lists count from 1

    def listed(condition: str, columns: list[ContractColumn], reason: str) -> str:
        """``WHEN`` any column meets ``condition`` ``THEN`` ``reason`` followed by those columns' paths.
        The test is a plain OR, so a good message (nearly all) never builds the list: building it
        for every message cost a fifth of the judging pass."""
        if not columns:
            return ""
        conditions = [condition.format(i=at[c.name]) for c in columns]
        parts = [
            f"CASE WHEN {test} THEN {_quoted(c.source_path)} END" for test, c in zip(conditions, columns, strict=True)
        ]
        return f"WHEN {' OR '.join(conditions)} THEN {_quoted(reason)} || concat_ws(', ', {', '.join(parts)})"

    missing = listed(
        "coalesce(_t[{i}], 'NULL') = 'NULL'", [c for c in contract.columns if c.required], "missing field(s): "
    )
    texts = [c for c in contract.columns if c.type in ("varchar", "timestamptz")]
    not_text = listed("_t[{i}] NOT IN ('VARCHAR', 'NULL')", texts, "not a string: ")
    typed = "\n".join(
        f"WHEN {condition} THEN {_quoted(reason)}"
        for column in contract.columns
        for condition, reason in _type_reasons(at[column.name], column)
    )
    return f"""
        CASE
            WHEN message_value IS NULL THEN 'no value (a tombstone)'
            WHEN _text IS NULL THEN 'value is not UTF-8 text'
            WHEN NOT _ok THEN 'malformed JSON'
            WHEN NOT _is_object THEN 'not a JSON object'
            {missing}
            {not_text}
            {typed}
        END
    """


def _transform_spec(contract: TopicContract) -> str | None:
    """The ``json_transform`` structure that reads every declared column at its path, typed (a time as its
    text, cast after), so one parse gives all the values; None when two paths cannot share one structure
    (the same key twice, keys that differ only in case: DuckDB's struct names ignore case, or a key that is
    both a value and a parent)."""
    spec: dict = {}
    for column in contract.columns:
        *parents, leaf = column.source_path.split(".")
        node = spec
        for key in parents:
            child = node.setdefault(key, {})
            if not isinstance(child, dict) or any(k.lower() == key.lower() and k != key for k in node):
                return None
            node = child
        if any(k.lower() == leaf.lower() for k in node):
            return None
        node[leaf] = SQL_TYPES[column.type] if column.type != "timestamptz" else "VARCHAR"
    return _quoted(json.dumps(spec))


def _json_values(contract: TopicContract) -> tuple[str, str]:
    """The expression of ``extracted``'s ``_j`` and the ``_v1``.. ``_vN`` columns of the declared values.

    One ``json_transform`` gives every value typed (DuckDB's non-strict casts: a value of the wrong JSON type
    reads as something or null, but ``_t`` rejects it anyway); when the paths cannot share its structure,
    ``json_extract_string`` over all the paths gives their texts, each cast on its own."""
    spec = _transform_spec(contract)
    if spec is not None:
        values = []
        for column in contract.columns:
            access = "_j"
            for key in column.source_path.split("."):
                access = f"struct_extract({access}, {_quoted(key)})"
            values.append(f"TRY_CAST({access} AS TIMESTAMPTZ)" if column.type == "timestamptz" else access)
        return f"json_transform(_text, {spec})", ", ".join(f"{v} AS _v{i}" for i, v in enumerate(values, start=1))
    paths = "[" + ", ".join(json_path(c.source_path) for c in contract.columns) + "]"
    values = [
        f"TRY_CAST(_j[{i}] AS {SQL_TYPES[c.type]})" if c.type != "varchar" else f"_j[{i}]"
        for i, c in enumerate(contract.columns, start=1)
    ]
    return f"json_extract_string(_text, {paths})", ", ".join(f"{v} AS _v{i}" for i, v in enumerate(values, start=1))


def _json_typed(contract: TopicContract) -> str:
    """The CTEs that read a JSON batch into ``typed``: the declared columns, and ``_reason``. The message is
    parsed three times, each a vectorised pass in DuckDB: ``json_valid``, ``json_type`` of all the paths,
    and the values of all the paths (``_json_values``)."""
    paths = "[" + ", ".join(json_path(c.source_path) for c in contract.columns) + "]"
    extract, values = _json_values(contract)
    names = ", ".join(f'_v{i} AS "{c.name}"' for i, c in enumerate(contract.columns, start=1))
    return f"""
    decoded AS (
        SELECT *, try(decode(message_value)) AS _text FROM kafka_incoming
    ),
    parsed AS (
        SELECT *, coalesce(json_valid(_text), false) AS _ok FROM decoded
    ),
    extracted AS (
        SELECT *,
               -- valid JSON that starts with a brace is an object: no need to parse it once more
               _ok AND starts_with(ltrim(_text, chr(32) || chr(9) || chr(10) || chr(13)), '{{') AS _is_object,
               CASE WHEN _ok THEN json_type(_text, {paths}) END AS _t,
               CASE WHEN _ok THEN {extract} END AS _j
        FROM parsed
    ),
    valued AS (
        SELECT *, {values} FROM extracted
    ),
    reasoned AS (
        SELECT *, {_json_reason(contract)} AS {DECODE_REASON} FROM valued
    ),
    typed AS (
        SELECT "partition", "offset", message_key, message_value, headers, message_timestamp, {DECODE_REASON}, {names}
        FROM reasoned
    ),"""


def judge_sql(contract: TopicContract) -> str:
    """The statement that judges ``kafka_incoming`` into the temporary table ``kafka_judged``: the message's
    own fields, ``reason`` (NULL for a good message), and the declared columns (NULL for a reject). A good
    message keeps its typed columns (what lands), a reject its raw bytes."""
    # An Avro batch is decoded already: the declared columns and DECODE_REASON are in it.
    typed = _json_typed(contract) if contract.value_format == "json" else "typed AS (SELECT * FROM kafka_incoming),"
    checks = "\n".join(f"WHEN NOT coalesce(({c.sql}), false) THEN {_quoted(c.message)}" for c in contract.checks)
    columns = ", ".join(f'CASE WHEN reason IS NULL THEN "{c.name}" END AS "{c.name}"' for c in contract.columns)
    return f"""
    CREATE OR REPLACE TEMP TABLE kafka_judged AS
    WITH {typed}
    judged AS (
        SELECT *, CASE WHEN {DECODE_REASON} IS NOT NULL THEN {DECODE_REASON} {checks} END AS reason FROM typed
    )
    SELECT "partition", "offset", message_key,
           CASE WHEN reason IS NOT NULL THEN message_value END AS message_value,
           headers, message_timestamp, reason, {columns}
    FROM judged
    """
