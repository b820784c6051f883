"""The durable webhook inbox: ``open_inbox(url)`` picks the backend from the URL.

- ``sqlite:///relative/path.sqlite3`` or ``sqlite:////absolute/path.sqlite3`` (local default);
  optional ``?timeout=SECONDS``: how long a write waits for another process's transaction (5).
- ``postgresql://user:password@host:port/db`` (or ``postgres://``): the cluster backend.
- ``noop://``: stores nothing (benchmark baseline only).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from .base import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_PURGE_BATCH_ROWS,
    KEPT_HEADERS,
    Inbox,
    InboxRecord,
    InboxSizes,
    InboxUnavailable,
    Lease,
    NewWebhook,
    PendingSummary,
    PurgeResult,
    PutResult,
)

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "DEFAULT_PURGE_BATCH_ROWS",
    "KEPT_HEADERS",
    "Inbox",
    "InboxRecord",
    "InboxSizes",
    "InboxUnavailable",
    "Lease",
    "NewWebhook",
    "PendingSummary",
    "PurgeResult",
    "PutResult",
    "open_inbox",
    "describe_inbox_url",
]

_SQLITE_PREFIX = "sqlite:///"


def open_inbox(url: str) -> Inbox:
    """The inbox at ``url``, not yet opened: ``await inbox.open()`` or ``async with inbox:``."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        from .sqlite import SQLiteInbox

        if not url.startswith(_SQLITE_PREFIX) or len(url) == len(_SQLITE_PREFIX):
            raise ValueError(f"SQLite inbox URL must look like sqlite:///path/to/inbox.sqlite3, got {url!r}")
        path, _, query = url[len(_SQLITE_PREFIX) :].partition("?")
        options = parse_qs(query)
        timeout = float(options["timeout"][0]) if "timeout" in options else 5.0
        return SQLiteInbox(path, timeout=timeout)
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresInbox

        return PostgresInbox(url)
    if scheme == "noop":
        from .noop import NoopInbox

        return NoopInbox()
    raise ValueError(f"unsupported inbox URL {describe_inbox_url(url)!r}: use sqlite:///… or postgresql://…")


def describe_inbox_url(url: str) -> str:
    """``url`` without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url
