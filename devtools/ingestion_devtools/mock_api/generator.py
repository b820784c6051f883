"""The seeded, deterministic record generator, vectorised with Arrow compute.

Nothing is materialised: a record is a pure function of (seed, id, version, timestamps). Base
record ``id`` (1..records) has an ``updated_at`` that grows with its id across the ``span`` before
the anchor, so the base set is already sorted by the keyset (updated_at, id) and a page is an id
range found by bisection. Admin mutations (``state.py``) overlay newer versions and new ids, always
later than every base record. A page is rendered column-wise by Arrow kernels straight into one
buffer of JSON lines, so serving 50k records costs milliseconds, not a Python loop.

The formulas, for readers (and the unit tests that re-derive them): with ``mix`` = splitmix64 and
``s = mix(seed)``:
  updated_at = start + ((id - 1) * span) // records
  created_at = updated_at if mix(s ^ id) is odd, else updated_at - (mix(s ^ id) >> 1) % (span // 4 + 1)
  who = mix(s ^ (id << 1)): first name FIRST_NAMES[who & 15], last name LAST_NAMES[(who >> 4) & 15]
  h = mix(s ^ (id << 20) ^ (version + 1)): amount = (h % 10_000_000) / 100,
      status = STATUSES[(h >> 24) & 3], category = CATEGORIES[(h >> 28) & 7]
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

_MASK64 = (1 << 64) - 1

FIRST_NAMES = (
    "Ada",
    "Alan",
    "Barbara",
    "Claude",
    "Donald",
    "Edsger",
    "Frances",
    "Grace",
    "Hedy",
    "Ivan",
    "John",
    "Katherine",
    "Linus",
    "Margaret",
    "Niklaus",
    "Radia",
)
LAST_NAMES = (
    "Lovelace",
    "Turing",
    "Liskov",
    "Shannon",
    "Knuth",
    "Dijkstra",
    "Allen",
    "Hopper",
    "Lamarr",
    "Sutherland",
    "Backus",
    "Johnson",
    "Torvalds",
    "Hamilton",
    "Wirth",
    "Perlman",
)
STATUSES = ("active", "pending", "suspended", "closed")
CATEGORIES = ("books", "electronics", "garden", "grocery", "music", "sports", "toys", "travel")

_FIRST = pa.array(FIRST_NAMES)
_LAST = pa.array(LAST_NAMES)
_FIRST_LOWER = pa.array([n.lower() for n in FIRST_NAMES])
_LAST_LOWER = pa.array([n.lower() for n in LAST_NAMES])
_STATUS = pa.array(STATUSES)
_CATEGORY = pa.array(CATEGORIES)
_TS = pa.timestamp("us", tz="UTC")


def _u64(value: int) -> pa.Scalar:
    return pa.scalar(value & _MASK64, pa.uint64())


def mix64(x: int) -> int:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash (scalar form)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def mix64_array(x: pa.Array) -> pa.Array:
    """``mix64`` over a uint64 array (Arrow's unchecked arithmetic wraps like the scalar mask)."""
    x = pc.add(x, _u64(0x9E3779B97F4A7C15))
    x = pc.multiply(pc.bit_wise_xor(x, pc.shift_right(x, _u64(30))), _u64(0xBF58476D1CE4E5B9))
    x = pc.multiply(pc.bit_wise_xor(x, pc.shift_right(x, _u64(27))), _u64(0x94D049BB133111EB))
    return pc.bit_wise_xor(x, pc.shift_right(x, _u64(31)))


def _mod(x: pa.Array, m: int) -> pa.Array:
    m = _u64(m)
    return pc.subtract(x, pc.multiply(pc.divide(x, m), m))


def _bits(x: pa.Array, shift: int, mask: int) -> pa.Array:
    return pc.bit_wise_and(pc.shift_right(x, _u64(shift)), _u64(mask))


_TWO_DIGITS = pa.array([f"{n:02d}" for n in range(100)])


def _div(x: pa.Array, m: int) -> pa.Array:
    return pc.divide(x, pa.scalar(m, x.type))


_MINUTE_SECOND = pa.array([f"{m:02d}:{sec:02d}." for m in range(60) for sec in range(60)])


def _iso(us: pa.Array) -> list:
    """RFC 3339 UTC text of microsecond timestamps, as parts for ``binary_join_element_wise``.

    Lookup tables (the hours the batch spans, the 3600 "MM:SS." of an hour, two digits) instead of
    ``pc.strftime``, which is several times slower."""
    seconds = _div(us, 1_000_000)
    frac = pc.subtract(us, pc.multiply(seconds, 1_000_000))
    hours = _div(seconds, 3600)
    first_hour, last_hour = (v.as_py() for v in pc.min_max(hours).values())
    hour_prefixes = pa.array([f"{_day(h // 24)}T{h % 24:02d}:" for h in range(first_hour, last_hour + 1)])
    return [
        pc.take(hour_prefixes, pc.subtract(hours, first_hour)),
        pc.take(_MINUTE_SECOND, pc.subtract(seconds, pc.multiply(hours, 3600))),
        pc.take(_TWO_DIGITS, _div(frac, 10_000)),
        pc.take(_TWO_DIGITS, _mod_int(_div(frac, 100), 100)),
        pc.take(_TWO_DIGITS, _mod_int(frac, 100)),
        "Z",
    ]


def _mod_int(x: pa.Array, m: int) -> pa.Array:
    return pc.subtract(x, pc.multiply(_div(x, m), m))


@lru_cache(maxsize=4096)
def _day(days_since_epoch: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=days_since_epoch)).isoformat()


def _text(ints: pa.Array) -> pa.Array:
    return ints.cast(pa.string())


class Dataset:
    """The base records: ``records`` ids whose timestamps end just before ``anchor_us``."""

    def __init__(self, *, seed: int, records: int, anchor_us: int, span_us: int):
        self.seed = seed
        self.records = records
        self.anchor_us = anchor_us
        self.span_us = max(span_us, records)  # at least 1 us apart keeps updated_at distinct
        self.start_us = anchor_us - self.span_us
        # (i * span) // records without overflowing int64: i*q + (i*r)//records, r < records.
        self._q, self._r = divmod(self.span_us, max(records, 1))
        self._seed_mix = mix64(seed)

    def base_updated_us(self, record_id: int) -> int:
        """Non-decreasing in id and always < anchor_us."""
        i = record_id - 1
        return self.start_us + i * self._q + (i * self._r) // max(self.records, 1)

    def base_columns(self, ids: pa.Array) -> tuple[pa.Array, pa.Array]:
        """(created_us, updated_us) of base records ``ids`` (int64)."""
        i = pc.subtract(ids, 1)
        updated = pc.add(
            pc.add(pc.multiply(i, self._q), pc.divide(pc.multiply(i, self._r), max(self.records, 1))), self.start_us
        )
        h = mix64_array(pc.bit_wise_xor(ids.cast(pa.uint64()), _u64(self._seed_mix)))
        back = _mod(pc.shift_right(h, _u64(1)), self.span_us // 4 + 1).cast(pa.int64())
        created = pc.if_else(pc.equal(_bits(h, 0, 1), _u64(1)), updated, pc.subtract(updated, back))
        return created, updated

    def render(
        self,
        ids: pa.Array,
        versions: pa.Array,
        created_us: pa.Array,
        updated_us: pa.Array,
        schema_mode: str,
        terminator: str = "\n",
    ) -> bytes:
        """The records as JSON objects, each followed by ``terminator``, in one buffer. No escaping
        is needed: every string comes from the fixed lists above."""
        if len(ids) == 0:
            return b""
        uid = ids.cast(pa.uint64())
        seed = _u64(self._seed_mix)
        who = mix64_array(pc.bit_wise_xor(pc.shift_left(uid, _u64(1)), seed))
        first_i, last_i = _bits(who, 0, 15), _bits(who, 4, 15)
        h = mix64_array(
            pc.bit_wise_xor(pc.bit_wise_xor(pc.shift_left(uid, _u64(20)), seed), pc.add(versions, 1).cast(pa.uint64()))
        )
        cents = _mod(h, 10_000_000)
        units = _text(pc.divide(cents, _u64(100)))
        hundredths = pc.utf8_lpad(_text(_mod(cents, 100)), 2, "0")
        if schema_mode == "renamed":
            amount = ['"amount_cents":', _text(cents)]
        elif schema_mode == "retyped":
            amount = ['"amount":"', units, ".", hundredths, '"']
        else:
            amount = ['"amount":', units, ".", hundredths]
        id_text = _text(ids)
        parts = [
            '{"id":',
            id_text,
            ',"name":"',
            pc.take(_FIRST, first_i),
            " ",
            pc.take(_LAST, last_i),
            '","email":"',
            pc.take(_FIRST_LOWER, first_i),
            ".",
            pc.take(_LAST_LOWER, last_i),
            id_text,
            '@example.com",',
            *amount,
            ',"status":"',
            pc.take(_STATUS, _bits(h, 24, 3)),
            '","category":"',
            pc.take(_CATEGORY, _bits(h, 28, 7)),
            '","version":',
            _text(versions),
            ',"created_at":"',
            *_iso(created_us),
            '","updated_at":"',
            *_iso(updated_us),
            '"}',
            terminator,
        ]
        lines = pc.binary_join_element_wise(*parts, "")
        # The joined strings sit back to back in the array's data buffer: that buffer IS the body.
        end = memoryview(lines.buffers()[1]).cast("i")[len(lines)]
        return lines.buffers()[2].to_pybytes()[:end]
