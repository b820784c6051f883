"""Benchmark: the pull pattern versus dlt's REST API source, same mock API, same machine (not a test).

Starts ``ingest mock-api`` (gunicorn) and measures, each in its own subprocess so peak RSS
(ru_maxrss) belongs to that pull alone:

* ours: the reference source API as shipped, a ``RestApiSource`` declaration
  (``defs/rest_apis/source_api``: /v1/records, NDJSON, the cursor in a header), its
  ``extract_source_data`` -> ``validate_extracted_data`` -> ``load_to_storage`` materialised
  in-process into a fresh DuckDB file, for ``--records`` (1M) and ``--rss-records`` (250k) to show
  that memory stays flat as the volume grows;
* link: the same records declared in another shape, /v1/items (a JSON envelope, Link headers, an
  API key), for ``--records``;
* dlt: ``dlt.sources.rest_api`` paging the same API (JSON envelope, cursor paginator) into DuckDB
  with ``write_disposition="merge"`` on ``id``, for ``--dlt-records`` (100k by default: dlt's
  rows/s do not depend on the volume, and 1M would take minutes).

Prints rows/s (records in final_data / wall seconds of the pull), the ratio ours/dlt and peak RSS.

    uv sync --all-groups && uv run python bench/bench_pull.py [--records 1000000] [--dlt-records 100000]

Targets (issues 3 and 11): ours >= 10x dlt's rows/s, peak RSS < 400 MB at 1M and flat from 250k to
1M; the envelope/Link shape >= 5x dlt.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingestion_devtools.processes import ManagedProcess, free_port
from ingestion_patterns import warehouse

TOKEN = "bench-token"
API_KEY = "bench-api-key"
COLUMNS = [
    {"name": "id", "type": "bigint", "required": True},
    {"name": "name", "type": "varchar", "required": True},
    {"name": "email", "type": "varchar", "required": True},
    {"name": "amount", "type": "double", "required": True},
    {"name": "status", "type": "varchar", "required": True},
    {"name": "category", "type": "varchar"},
    {"name": "version", "type": "bigint"},
    {"name": "created_at", "type": "timestamptz", "required": True},
    {"name": "updated_at", "type": "timestamptz", "required": True},
]
# The same records in another shape, declared as a defs.yaml would (the table is the name).
DECLARED = {
    "link": {
        "path": "/v1/items",
        "auth": {"type": "api_key", "name": "X-API-Key", "value_env": "BENCH_SOURCE_API_KEY"},
        "paginator": {"type": "link_header"},
        "records": {"format": "json", "path": "items"},
    },
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def pull_ours(url: str, db: str, page_size: int) -> dict:
    """The reference pull: the shipped source_api declaration (defs/rest_apis/source_api), at ``url``."""
    import yaml

    from ingestion_patterns.declarations import package_defs_folder

    path = package_defs_folder() / "rest_apis" / "source_api" / "defs.yaml"
    attributes = {**yaml.safe_load(path.read_text())["attributes"], "base_url": url}
    attributes["paginator"] = {**attributes["paginator"], "limit": page_size}
    return _materialize(attributes, db)


def pull_declared(shape: str, url: str, db: str, page_size: int) -> dict:
    declared = {**DECLARED[shape], "params": {"limit": page_size}}
    attributes = {
        "name": f"bench_{shape}",
        "base_url": url,
        **declared,
        "incremental": {"cursor_field": "updated_at", "param": "updated_since"},
        "primary_key": "id",
        "columns": COLUMNS,
    }
    return _materialize(attributes, db)


def _materialize(attributes: dict, db: str) -> dict:
    """A declared REST API's extract, check and load, in-process into ``db``: rows in its final table,
    seconds, peak RSS."""
    import dagster as dg
    import duckdb
    from dagster_duckdb import DuckDBResource

    from ingestion_patterns.pull.assets import build_rest_api_source
    from ingestion_patterns.pull.client import SourceApiResource
    from ingestion_patterns.pull.source import RestApiSourceSpec

    spec = RestApiSourceSpec.model_validate(attributes)
    os.environ.update({"SOURCE_API_TOKEN": TOKEN, "BENCH_SOURCE_API_KEY": API_KEY})
    definitions = build_rest_api_source(spec)
    instance = dg.DagsterInstance.ephemeral()  # made before the clock starts
    rss_before = _rss_mb()
    started = time.perf_counter()
    result = dg.materialize(
        [*definitions.assets, *definitions.asset_checks],
        resources={"source_api": SourceApiResource(), "duckdb": DuckDBResource(database=db)},  # the pull's settings
        instance=instance,
    )
    seconds = time.perf_counter() - started
    assert result.success
    with duckdb.connect(db, read_only=True) as conn:
        rows = warehouse.count_rows(conn, spec.tables.final)
    return {"rows": rows, "seconds": seconds, "rss_mb": _rss_mb(), "rss_before_mb": rss_before}


def pull_dlt(url: str, db: str, page_size: int) -> dict:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    import duckdb
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": {
                "base_url": url,
                "auth": {"type": "bearer", "token": TOKEN},
                "paginator": {"type": "cursor", "cursor_path": "next_cursor", "cursor_param": "cursor"},
            },
            "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
            "resources": [
                {
                    "name": "records",
                    "endpoint": {"path": "v1/records", "params": {"limit": page_size}, "data_selector": "data"},
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="bench_pull_dlt",
        destination=dlt.destinations.duckdb(db),
        dataset_name="dlt_bench",
        pipelines_dir=str(Path(db).parent / "dlt_pipelines"),
    )
    rss_before = _rss_mb()
    started = time.perf_counter()
    pipeline.run(source)
    seconds = time.perf_counter() - started
    with duckdb.connect(db, read_only=True) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM dlt_bench.records").fetchall()[0]
    return {"rows": rows, "seconds": seconds, "rss_mb": _rss_mb(), "rss_before_mb": rss_before}


def measure(kind: str, url: str, workdir: Path, page_size: int) -> dict:
    """One pull in a fresh subprocess (its own peak RSS); returns what it printed."""
    db = workdir / f"{kind}-{time.monotonic_ns()}.duckdb"
    output = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--db", str(db), "--page-size", str(page_size)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(workdir)},
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def start_api(records: int, workdir: Path, workers: int) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess.ingest(
        f"mock-api-{records}",
        "mock-api",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--records",
        str(records),
        "--token",
        TOKEN,
        "--api-key",
        API_KEY,
        "--state",
        str(workdir / f"state-{records}.sqlite3"),
        log_path=workdir / f"mock-api-{records}.log",
    ).start()
    url = f"http://127.0.0.1:{port}"
    process.wait_http(f"{url}/health")
    return process, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rss-records", type=int, default=250_000, help="smaller volume for the RSS comparison")
    parser.add_argument("--dlt-records", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2, help="mock API gunicorn workers")
    parser.add_argument("--child", choices=["ours", "dlt", *DECLARED], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        if args.child in DECLARED:
            print(json.dumps(pull_declared(args.child, args.url, args.db, args.page_size)))
        else:
            run = pull_ours if args.child == "ours" else pull_dlt
            print(json.dumps(run(args.url, args.db, args.page_size)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp:
        workdir = Path(tmp)
        (workdir / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        results: dict[str, dict] = {}
        for label, records, kind in (
            ("ours", args.records, "ours"),
            ("ours-small", args.rss_records, "ours"),
            ("link", args.records, "link"),
            ("dlt", args.dlt_records, "dlt"),
        ):
            process, url = start_api(records, workdir, args.workers)
            try:
                print(f"{label}: pulling {records:,} records ...", flush=True)
                results[label] = measure(kind, url, workdir, args.page_size)
                assert results[label]["rows"] == records, results[label]
            finally:
                process.stop()

    print(f"\n{'pull':<28}{'records':>10}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>13}{'(at start)':>12}")
    for label, name in (
        ("ours", "ours: source_api (cursor)"),
        ("ours-small", "ours"),
        ("link", "RestApiSource envelope+Link"),
        ("dlt", "dlt rest_api -> duckdb merge"),
    ):
        r = results[label]
        print(
            f"{name:<28}{r['rows']:>10,}{r['seconds']:>10.2f}{r['rows'] / r['seconds']:>12,.0f}"
            f"{r['rss_mb']:>13.0f}{r['rss_before_mb']:>12.0f}"
        )
    ours = results["ours"]["rows"] / results["ours"]["seconds"]
    dlt_rate = results["dlt"]["rows"] / results["dlt"]["seconds"]
    print(f"\nratio ours/dlt rows/s: {ours / dlt_rate:.1f}x (target >= 10x)")
    for label, target in (("link", 5),):
        rate = results[label]["rows"] / results[label]["seconds"]
        print(
            f"ratio RestApiSource {label}/dlt rows/s: {rate / dlt_rate:.1f}x (target >= {target}x), "
            f"peak RSS {results[label]['rss_mb']:.0f} MB at {args.records:,} records"
        )
    print(
        f"peak RSS: {results['ours-small']['rss_mb']:.0f} MB at {args.rss_records:,} records, "
        f"{results['ours']['rss_mb']:.0f} MB at {args.records:,} (target < 400 MB, flat)"
    )


if __name__ == "__main__":
    main()
