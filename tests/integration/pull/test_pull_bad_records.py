"""Bad records on the pull path, end to end: a source API (a real HTTP server on loopback) whose
pages hold lines that are not interchange JSON (a lone surrogate, 1e999, NaN, a top-level null) and
a NUL in a string. The real client, assets and check on a real DuckDB file: the good records land and
load, the bad ones are kept in ingestion.pull_rejects, the check warns without blocking the load, the
cursor moves past them, and the next run lands nothing twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import pytest
from pull_helpers import TOKEN, PullClient, materialization_metadata, query, run_pull

from ingestion_patterns.pull.client import SourceApiResource

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _record(i: int, **overrides) -> bytes:
    stamp = (T0 + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")
    record = {
        "id": i,
        "name": f"n{i}",
        "email": f"e{i}@x",
        "amount": 1.5 * i,
        "status": "active",
        "category": "books",
        "version": 1,
        "created_at": stamp,
        "updated_at": stamp,
        **overrides,
    }
    return json.dumps(record).encode()


BAD = {
    "lone surrogate": _record(90).replace(b'"n90"', b'"\\ud800"'),
    "1e999": _record(91).replace(b'"amount": 136.5', b'"amount": 1e999'),
    "NaN": _record(92).replace(b'"amount": 138.0', b'"amount": NaN'),
    "null": b"null",
    "last": _record(93).replace(b'"version": 1', b'"version": Infinity'),  # after every good record
}
PAGES = [
    [BAD["null"], _record(1), BAD["lone surrogate"], _record(2)],  # a top-level null first crashed pyarrow
    [BAD["1e999"], _record(3, name="a\x00b"), BAD["NaN"]],
    [_record(4), BAD["last"]],
]


class _Source(BaseHTTPRequestHandler):
    """``GET /v1/records``: the pages above, in order (the cursor is the page's index), as JSON lines."""

    def do_GET(self) -> None:  # http.server's name
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_error(401)
            return
        cursor = parse_qs(urlsplit(self.path).query).get("cursor", ["0"])[0]
        index = int(cursor)
        body = b"\n".join(PAGES[index]) + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Record-Count", str(len(PAGES[index])))
        if index + 1 < len(PAGES):
            self.send_header("X-Next-Cursor", str(index + 1))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def source_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_bad_lines_are_kept_as_rejects_and_never_fail_the_page_or_hold_the_cursor(source_url, tmp_path):
    db = tmp_path / "warehouse.duckdb"
    client = PullClient(source_url, TOKEN, settings=SourceApiResource(max_retries=1, backoff_initial_seconds=0.05))

    result = run_pull(client, db)
    assert result.success
    extracted = materialization_metadata(result, "extract_source_data")
    assert (extracted["record_count"], extracted["records_rejected"], extracted["pages"]) == (4, 5, 3)
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN  # warns; the load went on
    assert "5 record(s) rejected" in check.description
    assert materialization_metadata(result, "load_to_storage")["final_rows"] == 4

    assert query(db, "SELECT id, name FROM ingestion.final_data ORDER BY id") == [
        (1, "n1"),
        (2, "n2"),
        (3, "a\x00b"),
        (4, "n4"),
    ]
    kept = dict(query(db, "SELECT raw_line, reason FROM ingestion.pull_rejects"))
    assert set(kept) == set(BAD.values())
    assert "no low surrogate" in kept[BAD["lone surrogate"]] and "infinity" in kept[BAD["1e999"]]
    assert kept[BAD["null"]] == "a JSON null, not an object"
    assert query(db, "SELECT cursor_key::BIGINT FROM ingestion.pull_state") == [(4,)]

    # The next run pages again from the cursor; the last bad line comes again, and is kept once.
    again = run_pull(client, db)
    assert again.success
    assert materialization_metadata(again, "extract_source_data")["record_count"] == 0
    assert query(db, "SELECT count(*) FROM ingestion.pull_rejects") == [(5,)]
    assert query(db, "SELECT count(*) FROM ingestion.raw_extract") == [(4,)]
