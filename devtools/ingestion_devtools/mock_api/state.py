"""The source's mutable state: admin mutations in a small SQLite file that every worker shares.

The base records are generated (``generator.Dataset``); only what the admin endpoints changed is
stored: one row per mutated or created id with its current version and timestamps. Each worker
keeps an in-memory snapshot (``SourceView``) and reloads it when the ``generation`` counter in the
file moves, so a mutation made through one worker is visible through all of them (and through
every server started on the same file).
"""

from __future__ import annotations

import random
import sqlite3
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from .config import SCHEMA_MODES, MockApiConfig
from .generator import Dataset

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS mutations (seq INTEGER PRIMARY KEY, at_us INTEGER NOT NULL,"
    " created INTEGER NOT NULL, updated INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS overlay (id INTEGER PRIMARY KEY, version INTEGER NOT NULL,"
    " created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL)",
)

Key = tuple[int, int]  # (updated_at in us, id): the keyset the API pages on


@dataclass(frozen=True)
class Batch:
    """Records as columns (int64 arrays): what a page or an export chunk renders from."""

    ids: pa.Array
    versions: pa.Array
    created_us: pa.Array
    updated_us: pa.Array

    def __len__(self) -> int:
        return len(self.ids)

    def slice(self, offset: int, length: int | None = None) -> Batch:
        return Batch(*(a.slice(offset, length) for a in (self.ids, self.versions, self.created_us, self.updated_us)))

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        if len(batches) == 1:
            return batches[0]
        columns = zip(*((b.ids, b.versions, b.created_us, b.updated_us) for b in batches), strict=True)
        return Batch(*(pa.concat_arrays(list(c)) if c else pa.array([], pa.int64()) for c in columns))


def now_us() -> int:
    return time.time_ns() // 1000


class SourceView:
    """An immutable snapshot of the source: base dataset + overlay, ordered by (updated_at, id)."""

    def __init__(
        self, dataset: Dataset, overlay: list[tuple[int, int, int, int]], total: int, schema_mode: str, generation: int
    ):
        """``overlay``: (id, version, created_us, updated_us) of every mutated or created record."""
        self.dataset = dataset
        self.total = total
        self.schema_mode = schema_mode
        self.generation = generation
        # Every overlay timestamp is later than every base timestamp, so the keyset order is the
        # base records (minus the overridden ids) followed by the overlay sorted by key.
        rows = sorted(overlay, key=lambda r: (r[3], r[0]))
        self._overlay_keys = [(r[3], r[0]) for r in rows]
        self._overlay = Batch(*(pa.array(list(c), pa.int64()) for c in zip(*rows, strict=True))) if rows else _EMPTY
        self._by_id = {r[0]: r for r in rows}
        self._overridden = sorted(r[0] for r in rows if r[0] <= dataset.records)

    def current(self, record_ids: list[int]) -> dict[int, tuple[int, int]]:
        """id -> (version, created_us) of these records now."""
        found = {rid: self._by_id[rid][1:3] for rid in record_ids if rid in self._by_id}
        base = [rid for rid in record_ids if rid not in found]
        if base:
            created, _ = self.dataset.base_columns(pa.array(base, pa.int64()))
            found.update({rid: (0, c) for rid, c in zip(base, created.to_pylist(), strict=True)})
        return found

    def _base_ids(self, first: int, end: int, need: int | None = None) -> pa.Array:
        """Base ids from ``first`` (up to ``end``) without the overridden ones, at most ``need``."""
        ov, last = self._overridden, self.dataset.records + 1
        if need is not None:  # widen the range until it holds `need` ids that are not overridden
            skipped = 0
            while True:
                end = min(last, first + need + skipped)
                now_skipped = bisect_left(ov, end) - bisect_left(ov, first)
                if now_skipped == skipped or end == last:
                    break
                skipped = now_skipped
        ids = pa.array(range(first, end), pa.int64())
        lo, hi = bisect_left(ov, first), bisect_left(ov, end)
        if hi > lo:
            ids = ids.filter(pc.invert(pc.is_in(ids, value_set=pa.array(ov[lo:hi], pa.int64()))))
        return ids if need is None else ids.slice(0, need)

    def _base_batch(self, ids: pa.Array) -> Batch:
        created, updated = self.dataset.base_columns(ids)
        return Batch(ids, pa.nulls(len(ids), pa.int64()).fill_null(0), created, updated)

    def page(self, after: Key, before_us: int | None, limit: int) -> Batch:
        """Up to ``limit`` records whose key is > ``after`` and updated_at < ``before_us``, in key order."""
        ds = self.dataset
        parts: list[Batch] = []
        first = bisect_right(range(1, ds.records + 1), after, key=lambda i: (ds.base_updated_us(i), i)) + 1
        if first <= ds.records:
            base = self._base_batch(self._base_ids(first, ds.records + 1, need=limit))
            if before_us is not None:  # updated_at grows with id: the window is a prefix
                inside = pc.sum(pc.less(base.updated_us, before_us).cast(pa.int64())).as_py() or 0
                if inside < len(base):
                    return base.slice(0, inside)
            parts.append(base)
        room = limit - sum(len(p) for p in parts)
        if room > 0 and self._overlay_keys:
            start = bisect_right(self._overlay_keys, after)
            overlay = self._overlay.slice(start, room)
            if before_us is not None:
                inside = pc.sum(pc.less(overlay.updated_us, before_us).cast(pa.int64())).as_py() or 0
                overlay = overlay.slice(0, inside)
            parts.append(overlay)
        return Batch.concat(parts) if parts else _EMPTY

    def export_batches(self, chunk: int = 50_000):
        """Every current record (base ids in id order, then the overlay), ``chunk`` at a time:
        a path independent of the keyset paging, for tests to compare against."""
        for first in range(1, self.dataset.records + 1, chunk):
            ids = self._base_ids(first, min(first + chunk, self.dataset.records + 1))
            if len(ids):
                yield self._base_batch(ids)
        for offset in range(0, len(self._overlay), chunk):
            yield self._overlay.slice(offset, chunk)

    def render(self, batch: Batch, terminator: str = "\n") -> bytes:
        return self.dataset.render(
            batch.ids, batch.versions, batch.created_us, batch.updated_us, self.schema_mode, terminator
        )


_EMPTY = Batch(*(pa.array([], pa.int64()) for _ in range(4)))


class SourceStore:
    """The SQLite file holding the mutations; one connection per worker."""

    def __init__(self, config: MockApiConfig):
        self.config = config
        path = Path(config.state_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._view: SourceView | None = None
        self._initialise()

    def close(self) -> None:
        self._db.close()

    def _meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def _initialise(self) -> None:
        """Create the file, or start it afresh if it was made for another seed or volume."""
        cfg = self.config
        with self._transaction():
            for statement in _DDL:
                self._db.execute(statement)
            meta = self._meta()
            if meta.get("seed") == str(cfg.seed) and meta.get("records") == str(cfg.records):
                return
            self._db.execute("DELETE FROM meta")
            self._db.execute("DELETE FROM mutations")
            self._db.execute("DELETE FROM overlay")
            # The anchor is fixed once per state file: a restart serves the same timestamps.
            values = {
                "seed": cfg.seed,
                "records": cfg.records,
                "anchor_us": now_us(),
                "span_us": int(cfg.span_days * 86_400_000_000),
                "created_total": 0,
                "schema_mode": cfg.schema_mode,
                "generation": 1,
            }
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])

    def _transaction(self):
        db = self._db

        class _Tx:
            def __enter__(self):
                db.execute("BEGIN IMMEDIATE")  # serialises writers across workers and servers

            def __exit__(self, exc_type, *_):
                db.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()

    def view(self) -> SourceView:
        """The current snapshot, reloaded only when another worker changed the file."""
        generation = int(self._db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
        if self._view is None or self._view.generation != generation:
            meta = self._meta()
            dataset = Dataset(
                seed=int(meta["seed"]),
                records=int(meta["records"]),
                anchor_us=int(meta["anchor_us"]),
                span_us=int(meta["span_us"]),
            )
            overlay = self._db.execute("SELECT id, version, created_us, updated_us FROM overlay").fetchall()
            self._view = SourceView(
                dataset,
                overlay,
                dataset.records + int(meta["created_total"]),
                meta["schema_mode"],
                int(meta["generation"]),
            )
        return self._view

    def mutate(self, *, create: int, update: int) -> dict:
        """Create ``create`` new records and update ``update`` distinct existing ones, all at one new
        timestamp later than anything served so far. Which ids are updated follows from the seed and
        the mutation's sequence number, so replaying the same mutations gives the same source."""
        with self._transaction():
            meta = self._meta()
            seq = (self._db.execute("SELECT max(seq) FROM mutations").fetchone()[0] or 0) + 1
            last_at = self._db.execute("SELECT max(at_us) FROM mutations").fetchone()[0] or 0
            at_us = max(now_us(), last_at + 1, int(meta["anchor_us"]) + 1)
            total = int(meta["records"]) + int(meta["created_total"])
            update = min(update, total)
            updated_ids = sorted(random.Random(f"{meta['seed']}:{seq}").sample(range(1, total + 1), update))
            current = self.view().current(updated_ids)
            rows = [(rid, current[rid][0] + 1, current[rid][1], at_us) for rid in updated_ids]
            rows += [(rid, 0, at_us, at_us) for rid in range(total + 1, total + create + 1)]
            self._db.executemany("INSERT OR REPLACE INTO overlay VALUES (?, ?, ?, ?)", rows)
            self._db.execute("INSERT INTO mutations VALUES (?, ?, ?, ?)", (seq, at_us, create, update))
            self._set(created_total=int(meta["created_total"]) + create, generation=int(meta["generation"]) + 1)
        return {
            "seq": seq,
            "updated_at_us": at_us,
            "created_ids": [total + 1, total + create] if create else [],
            "updated_ids": updated_ids,
            "total": total + create,
        }

    def set_schema_mode(self, mode: str) -> None:
        if mode not in SCHEMA_MODES:
            raise ValueError(f"schema mode must be one of {', '.join(SCHEMA_MODES)}; got {mode!r}")
        with self._transaction():
            self._set(schema_mode=mode, generation=int(self._meta()["generation"]) + 1)

    def _set(self, **values: object) -> None:
        self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])
