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
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
class RecordRef:
    id: int
    version: int
    created_us: int
    updated_us: int


def now_us() -> int:
    return time.time_ns() // 1000


class SourceView:
    """An immutable snapshot of the source: base dataset + overlay, ordered by (updated_at, id)."""

    def __init__(self, dataset: Dataset, overlay: dict[int, RecordRef], total: int, schema_mode: str,
                 generation: int):
        self.dataset = dataset
        self.overlay = overlay
        self.total = total
        self.schema_mode = schema_mode
        self.generation = generation
        # Every overlay timestamp is later than every base timestamp, so the keyset order is the
        # base records (minus the overridden ids) followed by the overlay sorted by key.
        self._overlay_keys = sorted((ref.updated_us, ref.id) for ref in overlay.values())

    def record(self, record_id: int) -> RecordRef:
        ref = self.overlay.get(record_id)
        if ref is not None:
            return ref
        ds = self.dataset
        return RecordRef(record_id, 0, ds.base_created_us(record_id), ds.base_updated_us(record_id))

    def iter_after(self, after: Key, before_us: int | None = None) -> Iterator[RecordRef]:
        """Records whose key is > ``after`` and whose updated_at is < ``before_us``, in key order."""
        ds = self.dataset
        first = bisect_right(range(1, ds.records + 1), after, key=lambda i: (ds.base_updated_us(i), i)) + 1
        for record_id in range(first, ds.records + 1):
            if record_id in self.overlay:
                continue  # this id has a newer version, served from the overlay
            updated = ds.base_updated_us(record_id)
            if before_us is not None and updated >= before_us:
                return
            yield RecordRef(record_id, 0, ds.base_created_us(record_id), updated)
        for updated, record_id in self._overlay_keys[bisect_right(self._overlay_keys, after):]:
            if before_us is not None and updated >= before_us:
                return
            yield self.overlay[record_id]

    def iter_by_id(self) -> Iterator[RecordRef]:
        """Every current record by id: a second, independent path for tests to compare against."""
        for record_id in range(1, self.total + 1):
            yield self.record(record_id)


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
            values = {"seed": cfg.seed, "records": cfg.records, "anchor_us": now_us(),
                      "span_us": int(cfg.span_days * 86_400_000_000), "created_total": 0,
                      "schema_mode": cfg.schema_mode, "generation": 1}
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
            dataset = Dataset(seed=int(meta["seed"]), records=int(meta["records"]),
                              anchor_us=int(meta["anchor_us"]), span_us=int(meta["span_us"]))
            overlay = {row[0]: RecordRef(*row) for row in self._db.execute(
                "SELECT id, version, created_us, updated_us FROM overlay")}
            self._view = SourceView(dataset, overlay, dataset.records + int(meta["created_total"]),
                                    meta["schema_mode"], int(meta["generation"]))
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
            view = self.view()
            rows = [(rid, view.record(rid).version + 1, view.record(rid).created_us, at_us) for rid in updated_ids]
            rows += [(rid, 0, at_us, at_us) for rid in range(total + 1, total + create + 1)]
            self._db.executemany("INSERT OR REPLACE INTO overlay VALUES (?, ?, ?, ?)", rows)
            self._db.execute("INSERT INTO mutations VALUES (?, ?, ?, ?)", (seq, at_us, create, update))
            self._set(created_total=int(meta["created_total"]) + create, generation=int(meta["generation"]) + 1)
        return {"seq": seq, "updated_at_us": at_us, "created_ids": [total + 1, total + create] if create else [],
                "updated_ids": updated_ids, "total": total + create}

    def set_schema_mode(self, mode: str) -> None:
        if mode not in SCHEMA_MODES:
            raise ValueError(f"schema mode must be one of {', '.join(SCHEMA_MODES)}; got {mode!r}")
        with self._transaction():
            self._set(schema_mode=mode, generation=int(self._meta()["generation"]) + 1)

    def _set(self, **values: object) -> None:
        self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])
