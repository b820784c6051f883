"""The poll pattern's contract and its checks: one vectorised SQL pass over an Arrow batch.

``JUDGE_BATCH`` decodes, parses and validates every message of the incoming batch (``kafka_incoming``)
with DuckDB's JSON functions, never row by row in Python, into a temporary table that
``landing.land_batch`` splits into events and rejects, each reject with its reason.

The JSON rule is DuckDB's reader plus the interchange rules it does not apply itself: a lone
surrogate makes ``json_valid`` false (malformed JSON), but ``NaN``, ``Infinity`` and numbers too large
for a double (``1e999``) are read as numbers, so ``amount`` must be finite. A duplicate key keeps its
first value in DuckDB's JSON functions (the edges' rule, orjson's, keeps the last).
"""

from __future__ import annotations

REQUIRED_FIELDS = ("transaction_id", "account_id", "amount", "currency", "timestamp")
_TEXT_FIELDS = ("transaction_id", "account_id", "currency", "timestamp")
# json_type() names of JSON numbers: integers by sign and size, then floating point.
_NUMBER_TYPES = ("UBIGINT", "BIGINT", "DOUBLE", "HUGEINT")

# The fields extracted from each message, in this order: the required ones, then the optional ones.
_EXTRACTED = (*REQUIRED_FIELDS, "merchant", "channel")
_AT = {name: i + 1 for i, name in enumerate(_EXTRACTED)}  # SQL lists count from 1


def _rejection_reason_sql() -> str:
    """A SQL expression over the columns ``text`` (NULL if not UTF-8), ``ok`` (valid JSON),
    ``is_object``, ``t`` (json types of the fields) and ``v`` (their text): why the message is not a
    valid transaction, or NULL when it is."""
    missing = ", ".join(
        f"CASE WHEN coalesce(t[{_AT[name]}], 'NULL') = 'NULL' THEN '{name}' END" for name in REQUIRED_FIELDS
    )
    not_text = ", ".join(f"CASE WHEN t[{_AT[name]}] <> 'VARCHAR' THEN '{name}' END" for name in _TEXT_FIELDS)
    numbers = ", ".join(f"'{t}'" for t in _NUMBER_TYPES)
    return f"""
        CASE
            WHEN message_value IS NULL THEN 'no value (a tombstone)'
            WHEN text IS NULL THEN 'value is not UTF-8 text'
            WHEN NOT ok THEN 'malformed JSON'
            WHEN NOT is_object THEN 'not a JSON object'
            WHEN concat_ws(', ', {missing}) <> '' THEN 'missing field(s): ' || concat_ws(', ', {missing})
            WHEN concat_ws(', ', {not_text}) <> '' THEN 'not a string: ' || concat_ws(', ', {not_text})
            WHEN t[{_AT["amount"]}] NOT IN ({numbers}) THEN 'amount is not a number'
            -- DuckDB's JSON reader takes NaN, Infinity and 1e999 (as inf), which are no JSON numbers
            WHEN NOT coalesce(isfinite(TRY_CAST(v[{_AT["amount"]}] AS DOUBLE)), false)
                THEN 'amount is not a finite number'
            WHEN CAST(v[{_AT["amount"]}] AS DOUBLE) < 0 THEN 'negative amount'
            WHEN TRY_CAST(v[{_AT["timestamp"]}] AS TIMESTAMPTZ) IS NULL THEN 'timestamp is not an ISO 8601 time'
        END
    """


_FIELD_TYPES = {"amount": "DOUBLE", "timestamp": "TIMESTAMPTZ"}


def _typed_field(name: str) -> str:
    """The column of field ``name`` for a valid message (NULL for a reject)."""
    value = f"v[{_AT[name]}]"
    if name in _FIELD_TYPES:
        value = f"TRY_CAST({value} AS {_FIELD_TYPES[name]})"
    return f"CASE WHEN reason IS NULL THEN {value} END"


def _paths(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'$.{name}'" for name in names) + "]"


def _typed_fields() -> str:
    return ", ".join(f'{_typed_field(name)} AS "{name}"' for name in _EXTRACTED)


# Judging one batch: decode, parse and validate every message in one vectorised pass over the
# incoming Arrow batch (``kafka_incoming``), once, into a temporary in-memory table that the two
# inserts split. A valid message keeps its typed fields (what lands), a reject its raw bytes.
JUDGE_BATCH = f"""
    CREATE OR REPLACE TEMP TABLE kafka_judged AS
    WITH decoded AS (
        SELECT *, try(decode(message_value)) AS text FROM kafka_incoming
    ),
    parsed AS (
        SELECT *, coalesce(json_valid(text), false) AS ok FROM decoded
    ),
    typed AS (
        SELECT *,
               -- valid JSON that starts with a brace is an object: no need to parse it once more
               ok AND starts_with(ltrim(text, chr(32) || chr(9) || chr(10) || chr(13)), '{{') AS is_object,
               CASE WHEN ok THEN json_type(text, {_paths(REQUIRED_FIELDS)}) END AS t,
               CASE WHEN ok THEN json_extract_string(text, {_paths(_EXTRACTED)}) END AS v
        FROM parsed
    ),
    judged AS (
        SELECT *, {_rejection_reason_sql()} AS reason FROM typed
    )
    SELECT "partition", "offset", message_key,
           CASE WHEN reason IS NOT NULL THEN message_value END AS message_value,
           headers, message_timestamp, reason, {_typed_fields()}
    FROM judged
"""
