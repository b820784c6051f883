"""Opaque page cursors: the keyset position (updated_at, id) of the last record served, plus the
window's upper bound, so a cursor keeps meaning the same thing while records change."""

from __future__ import annotations

import base64
from dataclasses import dataclass


class CursorError(ValueError):
    """The client sent a cursor this API did not issue."""


@dataclass(frozen=True)
class Cursor:
    updated_us: int
    id: int
    before_us: int | None = None

    def encode(self) -> str:
        raw = f"v1:{self.updated_us}:{self.id}:{'' if self.before_us is None else self.before_us}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            version, updated, record_id, before = raw.split(":")
            if version != "v1":
                raise ValueError(version)
            return cls(int(updated), int(record_id), int(before) if before else None)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CursorError(f"invalid cursor {token!r}: use the next_cursor of a previous page") from exc
