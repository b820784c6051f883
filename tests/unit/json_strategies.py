"""Hypothesis strategies for JSON-ish bytes: what a sender, a source API or a producer may send.

Values are trees of JSON scalars (odd Unicode with NUL and control characters, huge and tiny
numbers), arrays and objects written by a serializer that can also write what is not interchange
JSON: lone surrogate escapes, ``NaN``/``Infinity``/``1e999``, duplicate keys, deep nesting. On top,
raw bytes and damaged documents (cut short, a byte order mark, a raw NUL, bytes that are not UTF-8).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from hypothesis import strategies as st


@dataclass(frozen=True)
class Raw:
    """JSON text written as it is (a token the serializer would not write itself)."""

    text: str


@dataclass(frozen=True)
class Obj:
    """An object as its key/value pairs, in order: a key may come twice."""

    pairs: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Deep:
    """``value`` inside ``levels`` arrays (or objects, one key each)."""

    levels: int
    value: Any
    objects: bool = False


# Numbers a double cannot hold, literals that are no JSON, and the edges of what a double can; lone
# surrogates as JSON escapes (and one proper pair).
NOT_JSON_NUMBERS = ("1e999", "-1e999", "NaN", "-NaN", "Infinity", "-Infinity", "nan", "inf")
EDGE_NUMBERS = (
    "1e308",
    "-1e308",
    "5e-324",
    "1e-400",
    "-0",
    "0.0",
    "18446744073709551616",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1E+2",
    "1.5e-7",
)
SURROGATE_ESCAPES = ('"\\ud800"', '"\\udfff"', '"x\\udc00y"', '"\\ud83d"', '"\\ude00\\ud83d"', '"\\ud83d\\ude00"')

# Any code point but a surrogate (those come as escapes, SURROGATE_ESCAPES): NUL and controls included.
text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
odd_text = st.one_of(
    text,
    st.sampled_from(["", "\x00", "a\x00b", "\u2028\u2029", "\ufeff", "\U0001f600", "é" * 3, "\x7f\x1f", "\\", '"']),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([Raw(n) for n in NOT_JSON_NUMBERS + EDGE_NUMBERS]),
)
surrogate_escapes = st.sampled_from([Raw(s) for s in SURROGATE_ESCAPES])
# Mostly plain JSON scalars; one in eight is a number or an escape that is not interchange JSON.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    odd_text,
    odd_text,
    st.sampled_from([Raw(n) for n in EDGE_NUMBERS]),
    st.one_of(numbers, surrogate_escapes),
)
keys = st.one_of(odd_text, st.sampled_from(["a", "id", "amount", "timestamp", "data", "type"]))


def _tree(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(st.tuples(keys, children), max_size=4).map(lambda pairs: Obj(tuple(pairs))),
    )


values = st.recursive(scalars, _tree, max_leaves=12)
deep = st.builds(Deep, st.integers(min_value=200, max_value=1100), scalars, st.booleans())


def render(value: Any, *, ensure_ascii: bool = False) -> str:
    """JSON text of ``value`` (``Raw``, ``Obj`` and ``Deep`` included); floats as Python writes
    them (``NaN``, ``Infinity``). Iterative for ``Deep``."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Deep):
        inner = render(value.value, ensure_ascii=ensure_ascii)
        if value.objects:
            return '{"d":' * value.levels + inner + "}" * value.levels
        return "[" * value.levels + inner + "]" * value.levels
    if isinstance(value, Obj):
        parts = (
            f"{json.dumps(k, ensure_ascii=ensure_ascii)}:{render(v, ensure_ascii=ensure_ascii)}" for k, v in value.pairs
        )
        return "{" + ",".join(parts) + "}"
    if isinstance(value, list):
        return "[" + ",".join(render(v, ensure_ascii=ensure_ascii) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ensure_ascii)


def document(fields: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """An object of ``fields`` (each value possibly odd), maybe with extra and duplicate keys,
    maybe wrapped deep, written as UTF-8."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        pairs: list[tuple[str, Any]] = list(draw(fields).items())
        pairs += draw(st.lists(st.tuples(keys, st.one_of(values, deep)), max_size=3))
        duplicate: bool = draw(st.booleans())
        if pairs and duplicate:
            key, _ = draw(st.sampled_from(pairs))
            pairs.append((key, draw(values)))  # a duplicate key, with another value
        order = draw(st.permutations(range(len(pairs)))) if draw(st.booleans()) else range(len(pairs))
        return render(Obj(tuple(pairs[i] for i in order)), ensure_ascii=draw(st.booleans())).encode()

    return build()


@st.composite
def damaged(draw: st.DrawFn, bodies: st.SearchStrategy[bytes]) -> bytes:
    """A body, sometimes damaged the ways bytes get damaged."""
    body = draw(bodies)
    how = draw(st.sampled_from(["as is"] * 5 + ["cut", "bom", "raw nul", "not utf-8", "spaces"]))
    if how == "cut" and body:
        return body[: draw(st.integers(min_value=0, max_value=len(body) - 1))]
    if how == "bom":
        return b"\xef\xbb\xbf" + body
    if how == "raw nul" and body:
        at = draw(st.integers(min_value=0, max_value=len(body)))
        return body[:at] + b"\x00" + body[at:]
    if how == "not utf-8":
        at = draw(st.integers(min_value=0, max_value=len(body)))
        return body[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80"])) + body[at:]
    if how == "spaces":
        return b" \t\r\n" + body + b"\r\n "
    return body


def json_ish(
    valid: st.SearchStrategy[dict[str, Any]], fields: st.SearchStrategy[dict[str, Any]]
) -> st.SearchStrategy[bytes]:
    """A third of the time a ``valid`` record, plainly written; a third the object of ``fields``
    (odd values); else that object with extra and duplicate keys, any JSON value, a deep one or
    raw bytes, any of them possibly damaged."""
    return st.one_of(
        valid.map(lambda f: render(Obj(tuple(f.items()))).encode()),
        fields.map(lambda f: render(Obj(tuple(f.items()))).encode()),
        damaged(
            st.one_of(
                document(fields),
                document(fields),
                document(fields),
                values.map(lambda v: render(v).encode()),
                deep.map(lambda v: render(v).encode()),
                st.binary(max_size=40),
            )
        ),
    )


# ------------------------------------------------------------------ each pattern's records

VALID_TIMES = st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat())
ISO_TIMES = st.one_of(
    VALID_TIMES,
    VALID_TIMES,
    st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01", "yesterday", "", "2026-13-01T00:00:00Z"]),
)


def mostly(good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four, else ``odd``."""
    return st.one_of(good, good, good, odd)


plain_text = st.text(max_size=12)  # no surrogates; NUL and odd code points included


def valid_webhook() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"timestamp": VALID_TIMES, "data": st.one_of(plain_text, st.lists(st.integers()))},
        optional={"id": plain_text, "type": plain_text},
    )


def webhook_fields() -> st.SearchStrategy[dict[str, Any]]:
    """A webhook payload's fields: the required ``timestamp`` and ``data``, odd values too."""
    return st.fixed_dictionaries(
        {"timestamp": mostly(ISO_TIMES, values), "data": st.one_of(values, values, deep)},
        optional={"id": odd_text, "type": st.one_of(odd_text, values)},
    )


def valid_pull_record() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.integers(min_value=1, max_value=2**40),
            "name": plain_text,
            "email": plain_text,
            "amount": st.floats(allow_nan=False, allow_infinity=False),
            "status": plain_text,
            "category": st.one_of(plain_text, st.none()),
            "version": st.integers(min_value=0, max_value=10),
            "created_at": VALID_TIMES,
            "updated_at": VALID_TIMES,
        }
    )


def pull_record_fields() -> st.SearchStrategy[dict[str, Any]]:
    """A source API record's fields: the contract's, often of a JSON type its column cannot hold."""
    return st.fixed_dictionaries(
        {
            "id": mostly(st.integers(min_value=1, max_value=2**40), values),
            "name": mostly(odd_text, values),
            "amount": mostly(numbers, values),
            "updated_at": mostly(VALID_TIMES, ISO_TIMES),
        },
        optional={
            "email": odd_text,
            "status": odd_text,
            "category": st.one_of(odd_text, st.none()),
            "version": mostly(st.integers(min_value=0, max_value=10), values),
            "created_at": ISO_TIMES,
        },
    )


def valid_transaction() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "transaction_id": plain_text,
            "account_id": plain_text,
            "amount": st.floats(min_value=0, max_value=1e12),
            "currency": plain_text,
            "timestamp": VALID_TIMES,
        },
        optional={"merchant": plain_text, "channel": plain_text},
    )


def transaction_fields() -> st.SearchStrategy[dict[str, Any]]:
    """A Kafka transaction's fields, some missing, some of the wrong JSON type, some odd."""
    return st.fixed_dictionaries(
        {},
        optional={
            "transaction_id": mostly(odd_text, values),
            "account_id": odd_text,
            "amount": st.one_of(numbers, values),
            "currency": odd_text,
            "timestamp": st.one_of(ISO_TIMES, values),
            "merchant": st.one_of(odd_text, values),
            "channel": odd_text,
        },
    )
