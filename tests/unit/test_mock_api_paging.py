"""Keyset paging over the generated source and its overlay, cursors, rate limiting, fault dice."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from ingestion_devtools.mock_api.cursor import Cursor, CursorError
from ingestion_devtools.mock_api.faults import FaultPlan, TokenBucket, retry_after_header
from ingestion_devtools.mock_api.generator import Dataset
from ingestion_devtools.mock_api.state import SourceView

ANCHOR = 1_795_677_794_424_430
START = (-(1 << 62), 0)


def make_view(records: int, overlay: Sequence[tuple[int, int, int, int]] = (), created: int = 0) -> SourceView:
    return SourceView(
        Dataset(seed=5, records=records, anchor_us=ANCHOR, span_us=86_400_000_000),
        list(overlay),
        records + created,
        "normal",
        1,
    )


def walk(view: SourceView, limit: int, before_us: int | None = None) -> list[tuple[int, int, int]]:
    """(updated_us, id, version) of every record, following next keys page by page like a client."""
    seen, after = [], START
    while True:
        batch = view.page(after, before_us, limit + 1)
        page = batch.slice(0, limit)
        seen += list(zip(page.updated_us.to_pylist(), page.ids.to_pylist(), page.versions.to_pylist(), strict=True))
        if len(batch) <= limit:
            return seen
        after = (page.updated_us[-1].as_py(), page.ids[-1].as_py())


@pytest.mark.parametrize("limit", [1, 7, 100, 5000])
def test_paging_returns_every_record_once_in_key_order(limit):
    view = make_view(1000)
    seen = walk(view, limit)
    assert [record_id for _, record_id, _ in seen] == list(range(1, 1001))
    assert seen == sorted(seen)


def test_overlaid_records_are_served_once_with_their_new_version_after_the_base():
    records, now = 500, ANCHOR + 10
    updated_ids = sorted(random.Random(2).sample(range(1, records + 1), 60))
    overlay = [(i, 1, 0, now) for i in updated_ids] + [(i, 0, now, now) for i in range(501, 511)]
    view = make_view(records, overlay, created=10)
    seen = walk(view, 37)
    assert sorted(record_id for _, record_id, _ in seen) == list(range(1, 511))
    assert seen == sorted(seen)
    tail = seen[-70:]
    assert {record_id for _, record_id, _ in tail} == set(updated_ids) | set(range(501, 511))
    assert all(version == 1 for _, record_id, version in tail if record_id <= records)


def test_updated_before_bounds_the_window():
    view = make_view(1000)
    cut = view.dataset.base_updated_us(301)
    assert [record_id for _, record_id, _ in walk(view, 50, before_us=cut)] == list(range(1, 301))


def test_export_lists_every_current_record_once():
    view = make_view(300, [(5, 2, 0, ANCHOR + 1), (301, 0, ANCHOR + 1, ANCHOR + 1)], created=1)
    batches = list(view.export_batches(chunk=64))
    ids = sorted(i for b in batches for i in b.ids.to_pylist())
    assert ids == list(range(1, 302))
    versions = {i: v for b in batches for i, v in zip(b.ids.to_pylist(), b.versions.to_pylist(), strict=True)}
    assert versions[5] == 2


def test_cursor_round_trips_and_rejects_garbage():
    cursor = Cursor(ANCHOR, 42, None)
    assert Cursor.decode(cursor.encode()) == cursor
    assert Cursor.decode(Cursor(1, 2, ANCHOR).encode()).before_us == ANCHOR
    for bad in ("zzz", "", Cursor(1, 2).encode()[:-3] + "!!!"):
        with pytest.raises(CursorError, match="invalid cursor"):
            Cursor.decode(bad)


def test_token_bucket_admits_the_rate_and_says_how_long_to_wait():
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=2, clock=lambda: now[0])
    assert bucket.take() == 0 and bucket.take() == 0
    wait = bucket.take()
    assert wait == pytest.approx(0.5)
    assert retry_after_header(wait) == "1"
    now[0] += 0.5
    assert bucket.take() == 0
    assert TokenBucket(rate=0).take() == 0


def test_fault_dice_follow_the_configured_ratios():
    plan = FaultPlan(error_ratio=0.2, timeout_ratio=0.05, truncate_ratio=0.1, rng=random.Random(11))
    draws = [plan.draw() for _ in range(20_000)]
    assert draws.count("error") / len(draws) == pytest.approx(0.2, abs=0.015)
    assert draws.count("timeout") / len(draws) == pytest.approx(0.05, abs=0.01)
    assert draws.count("truncate") / len(draws) == pytest.approx(0.1, abs=0.01)
    assert FaultPlan(error_ratio=0, timeout_ratio=0, truncate_ratio=0).draw() is None
