"""The seeded, deterministic record generator.

Nothing is materialised: a record is a pure function of (seed, id, version, timestamps), rendered
straight to a JSON line. Base record ``id`` (1..records) has an ``updated_at`` that grows with its
id across the ``span`` before start-up, so the base set is already sorted by the keyset
(updated_at, id) and a page is a contiguous id range found by bisection. Admin mutations (see
``state.py``) overlay newer versions and new ids, always later than every base record.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

_MASK64 = (1 << 64) - 1

FIRST_NAMES = ("Ada", "Alan", "Barbara", "Claude", "Donald", "Edsger", "Frances", "Grace", "Hedy",
               "Ivan", "John", "Katherine", "Linus", "Margaret", "Niklaus", "Radia")
LAST_NAMES = ("Lovelace", "Turing", "Liskov", "Shannon", "Knuth", "Dijkstra", "Allen", "Hopper",
              "Lamarr", "Sutherland", "Backus", "Johnson", "Torvalds", "Hamilton", "Wirth", "Perlman")
STATUSES = ("active", "pending", "suspended", "closed")
CATEGORIES = ("books", "electronics", "garden", "grocery", "music", "sports", "toys", "travel")


def mix64(x: int) -> int:
    """splitmix64's finaliser: a cheap, well-spread 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


@lru_cache(maxsize=8192)
def _day(days_since_epoch: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=days_since_epoch)).isoformat()


def iso_us(us: int) -> str:
    """Microseconds since the epoch as RFC 3339 UTC (``2026-01-02T03:04:05.000006Z``), fast."""
    seconds, frac = divmod(us, 1_000_000)
    days, second_of_day = divmod(seconds, 86_400)
    hour, rest = divmod(second_of_day, 3600)
    minute, second = divmod(rest, 60)
    return f"{_day(days)}T{hour:02d}:{minute:02d}:{second:02d}.{frac:06d}Z"


class Dataset:
    """The base records: ``records`` ids whose timestamps end just before ``anchor_us``."""

    def __init__(self, *, seed: int, records: int, anchor_us: int, span_us: int):
        self.seed = seed
        self.records = records
        self.anchor_us = anchor_us
        self.span_us = max(span_us, records)  # at least 1 us apart keeps updated_at distinct
        self.start_us = anchor_us - self.span_us
        self._seed_mix = mix64(seed)

    def base_updated_us(self, record_id: int) -> int:
        """Non-decreasing in id and always < anchor_us."""
        return self.start_us + ((record_id - 1) * self.span_us) // max(self.records, 1)

    def base_created_us(self, record_id: int) -> int:
        h = mix64(self._seed_mix ^ record_id)
        updated = self.base_updated_us(record_id)
        if h & 1:  # half of the records were never updated after creation
            return updated
        return updated - (h >> 1) % (self.span_us // 4 + 1)

    def render(self, record_id: int, version: int, created_us: int, updated_us: int, schema_mode: str) -> str:
        """One record as a JSON object (no escaping needed: every string comes from fixed lists)."""
        who = mix64(self._seed_mix ^ (record_id << 1))
        first = FIRST_NAMES[who & 15]
        last = LAST_NAMES[(who >> 4) & 15]
        h = mix64(self._seed_mix ^ (record_id << 20) ^ (version + 1))
        cents = h % 10_000_000
        if schema_mode == "renamed":
            amount = f'"amount_cents":{cents}'
        elif schema_mode == "retyped":
            amount = f'"amount":"{cents // 100}.{cents % 100:02d}"'
        else:
            amount = f'"amount":{cents // 100}.{cents % 100:02d}'
        return (
            f'{{"id":{record_id},"name":"{first} {last}","email":"{first.lower()}.{last.lower()}'
            f'{record_id}@example.com",{amount},"status":"{STATUSES[(h >> 24) & 3]}",'
            f'"category":"{CATEGORIES[(h >> 28) & 7]}","version":{version},'
            f'"created_at":"{iso_us(created_us)}","updated_at":"{iso_us(updated_us)}"}}'
        )
