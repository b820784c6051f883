"""The mock API's generator: deterministic, matching its documented formulas, timestamps ordered."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from ingestion_devtools.mock_api.generator import CATEGORIES, FIRST_NAMES, LAST_NAMES, STATUSES, Dataset, mix64

ANCHOR = 1_795_677_794_424_430
SPAN = 30 * 86_400 * 1_000_000


def reference_record(ds: Dataset, record_id: int, version: int, created: int, updated: int) -> dict:
    """The record as the generator's docstring defines it, computed one at a time in plain Python."""
    s = mix64(ds.seed)
    who = mix64(s ^ (record_id << 1))
    first, last = FIRST_NAMES[who & 15], LAST_NAMES[(who >> 4) & 15]
    h = mix64(s ^ (record_id << 20) ^ (version + 1))

    def iso(us: int) -> str:
        return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{us % 1_000_000:06d}Z"

    return {
        "id": record_id,
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{record_id}@example.com",
        "amount": (h % 10_000_000) / 100,
        "status": STATUSES[(h >> 24) & 3],
        "category": CATEGORIES[(h >> 28) & 7],
        "version": version,
        "created_at": iso(created),
        "updated_at": iso(updated),
    }


def reference_times(ds: Dataset, record_id: int) -> tuple[int, int]:
    updated = ds.start_us + ((record_id - 1) * ds.span_us) // ds.records
    h = mix64(mix64(ds.seed) ^ record_id)
    created = updated if h & 1 else updated - (h >> 1) % (ds.span_us // 4 + 1)
    return created, updated


def _render(ds: Dataset, ids, versions, created, updated, mode="normal") -> list[dict]:
    body = ds.render(*(pa.array(c, pa.int64()) for c in (ids, versions, created, updated)), mode)
    return [json.loads(line) for line in body.decode().splitlines()]


@pytest.mark.parametrize("records", [1, 1000, 3_000_000])
def test_base_timestamps_follow_the_formula_and_end_before_the_anchor(records):
    ds = Dataset(seed=7, records=records, anchor_us=ANCHOR, span_us=SPAN)
    sample = sorted(random.Random(1).sample(range(1, records + 1), min(records, 200)))
    created, updated = ds.base_columns(pa.array(sample, pa.int64()))
    assert list(zip(created.to_pylist(), updated.to_pylist(), strict=True)) == [reference_times(ds, i) for i in sample]
    assert updated.to_pylist() == [ds.base_updated_us(i) for i in sample]
    assert updated.to_pylist() == sorted(updated.to_pylist())
    assert all(c <= u < ANCHOR for c, u in zip(created.to_pylist(), updated.to_pylist(), strict=True))


def test_rendered_records_match_the_reference_definition():
    ds = Dataset(seed=42, records=10_000, anchor_us=ANCHOR, span_us=SPAN)
    rng = random.Random(3)
    ids = rng.sample(range(1, 10_001), 300)
    versions = [rng.randrange(5) for _ in ids]
    created = [rng.randrange(0, ANCHOR) for _ in ids]
    updated = [c + rng.randrange(0, SPAN) for c in created]
    rendered = _render(ds, ids, versions, created, updated)
    assert rendered == [reference_record(ds, *row) for row in zip(ids, versions, created, updated, strict=True)]


def test_the_same_seed_gives_the_same_records_and_another_seed_other_records():
    args = ([1, 2, 3], [0, 0, 0], [ANCHOR - 5] * 3, [ANCHOR - 1] * 3)
    one = _render(Dataset(seed=1, records=3, anchor_us=ANCHOR, span_us=SPAN), *args)
    again = _render(Dataset(seed=1, records=3, anchor_us=ANCHOR, span_us=SPAN), *args)
    other = _render(Dataset(seed=2, records=3, anchor_us=ANCHOR, span_us=SPAN), *args)
    assert one == again
    assert one != other


def test_schema_modes_rename_or_retype_the_amount():
    ds = Dataset(seed=42, records=10, anchor_us=ANCHOR, span_us=SPAN)
    args = ([4], [1], [ANCHOR - 10], [ANCHOR - 1])
    [normal] = _render(ds, *args)
    [renamed] = _render(ds, *args, mode="renamed")
    [retyped] = _render(ds, *args, mode="retyped")
    assert "amount" not in renamed and renamed["amount_cents"] == round(normal["amount"] * 100)
    assert retyped["amount"] == f"{normal['amount']:.2f}"
    assert {k: v for k, v in renamed.items() if k != "amount_cents"} == {
        k: v for k, v in normal.items() if k != "amount"
    }


def test_rendering_nothing_gives_an_empty_body():
    ds = Dataset(seed=42, records=10, anchor_us=ANCHOR, span_us=SPAN)
    assert ds.render(*(pa.array([], pa.int64()) for _ in range(4)), "normal") == b""
