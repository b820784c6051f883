"""Benchmark: durable accepted webhooks/s versus the same receiver's no-op path (not a test).

For 1 and 2 gunicorn workers, the receiver runs twice on this machine's loopback: with the SQLite
inbox (every 202 fsynced; the local default) and with the ``noop://`` inbox (parse the JSON, answer
202, store nothing). ``wrk`` drives 32 connections for 10 s, each request with a unique webhook-id
(bench/webhooks.lua). Printed per worker count: requests/s, p50/p99 latency, the ratio
durable/no-op, and a check that the inbox holds exactly the number of 202s wrk counted.
``--postgres URL`` adds the PostgreSQL inbox to the table.

    uv run python bench/bench_webhooks.py [--duration 10] [--connections 32] [--postgres URL]

Target (issue 2): ratio >= 0.6 with p99 <= 25 ms. The CPU is shared with whatever else runs, so
compare the ratio (measured seconds apart), not the absolute figures across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ingestion_patterns.processes import ManagedProcess, free_port

LUA = Path(__file__).with_name("webhooks.lua")
BENCH_LINE = re.compile(r"BENCH (.*)")
ACCEPTED_LINE = re.compile(r'^webhook_accepted_total\{source_id="bench"\} (\S+)$', re.MULTILINE)


@dataclass
class Result:
    label: str
    workers: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    accepted: int  # 202s in the measured run
    stored_check: str


def ensure_wrk() -> str:
    if path := shutil.which("wrk"):
        print(f"load generator: {path}")
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: installing Debian's package (apt-get install -y wrk) ...")
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)
        if path := shutil.which("wrk"):
            return path
    sys.exit("wrk is required: install it (Debian/Ubuntu: apt-get install -y wrk) and run again")


def run_wrk(wrk: str, url: str, *, connections: int, duration: int, tag: str) -> dict[str, int]:
    threads = min(2, connections)
    output = subprocess.run(
        [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", str(LUA), url],
        check=True, capture_output=True, text=True, env={**os.environ, "BENCH_RUN_TAG": tag},
    ).stdout
    match = BENCH_LINE.search(output)
    if not match:
        raise RuntimeError(f"wrk printed no BENCH line:\n{output}")
    return {key: int(value) for key, value in (pair.split("=") for pair in match.group(1).split())}


def settled_accepted_count(base: str) -> int:
    """webhook_accepted_total from /metrics (all workers), once in-flight requests have finished."""
    def read() -> int:
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            text = response.read().decode()
        return int(sum(float(value) for value in ACCEPTED_LINE.findall(text)))

    previous = -1
    while (current := read()) != previous:
        previous = current
        time.sleep(0.5)
    return current


def count_stored(inbox_url: str) -> int:
    from ingestion_patterns.webhooks.inbox import open_inbox

    async def count() -> int:
        async with open_inbox(inbox_url) as inbox:
            return sum(summary.count for summary in await inbox.pending_sources())

    return asyncio.run(count())


def measure(wrk: str, label: str, inbox_url: str, workers: int, args, workdir: Path) -> Result:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(workdir / f"metrics-{label}-{workers}")}
    receiver = ManagedProcess.ingest(
        f"receiver-{label}-{workers}", "webhook-receiver", "--port", str(port), "--workers", str(workers),
        "--inbox", inbox_url, env=env, log_path=workdir / f"receiver-{label}-{workers}.log",
    )
    with receiver:
        receiver.wait_http(f"{base}/ready", timeout=60)
        url = f"{base}/webhook/bench"
        warm = run_wrk(wrk, url, connections=args.connections, duration=2, tag=f"warm-{label}-{workers}-{time.time_ns()}")
        run = run_wrk(wrk, url, connections=args.connections, duration=args.duration,
                      tag=f"run-{label}-{workers}-{time.time_ns()}")
        server_accepted = settled_accepted_count(base)
    failures = warm["other"] + run["other"] + run["errors_connect"] + run["errors_timeout"]
    # wrk stops with requests in flight: the server may have accepted a few whose 202 wrk never read.
    acked = warm["accepted"] + run["accepted"]
    check = f"server acked {server_accepted} (wrk read {acked})"
    if not acked <= server_accepted <= acked + 2 * args.connections:  # two wrk runs, each cut off
        check += " MISMATCH between wrk and the server's count"
    if label != "no-op":
        stored = count_stored(inbox_url)
        check += f", inbox holds {stored}: " + ("OK" if stored == server_accepted else "MISMATCH")
    if failures:
        check += f"; {failures} non-202/errors"
    return Result(label, workers, run["accepted"] * 1e6 / run["duration_us"], run["p50_us"] / 1000,
                  run["p99_us"] / 1000, run["accepted"], check)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--postgres", metavar="URL", help="also measure the PostgreSQL inbox at this URL "
                        "(its webhook_inbox table must be empty or absent)")
    args = parser.parse_args()
    wrk = ensure_wrk()
    print(f"{os.cpu_count()} CPUs; load and server share them (and so does anything else running now)")
    # On the project's disk, not a tmpfs, so the fsync the ack waits for is a real one.
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-", dir=Path.cwd()))
    results: list[Result] = []
    try:
        for workers in args.workers:
            backends = [("no-op", "noop://"), ("sqlite", f"sqlite:///{workdir}/inbox-{workers}.sqlite3")]
            if args.postgres:
                backends.append(("postgresql", args.postgres))
            for label, url in backends:
                print(f"measuring {label} inbox, {workers} worker(s), {args.connections} connections, "
                      f"{args.duration} s ...", flush=True)
                results.append(measure(wrk, label, url, workers, args, workdir))
                if label == "postgresql":
                    _drop_postgres_inbox(args.postgres)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"{'inbox':<11} {'workers':>7} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'vs no-op':>8}  nothing lost?")
    for result in results:
        baseline = next(r for r in results if r.workers == result.workers and r.label == "no-op")
        ratio = result.requests_per_second / baseline.requests_per_second
        print(f"{result.label:<11} {result.workers:>7} {result.requests_per_second:>9.0f} {result.p50_ms:>7.1f} "
              f"{result.p99_ms:>7.1f} {ratio:>8.2f}  {result.stored_check}")
    print("\ntarget: durable/no-op >= 0.60 with p99 <= 25 ms, and the inbox holds exactly what the server acked")


def _drop_postgres_inbox(url: str) -> None:
    async def drop() -> None:
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP TABLE IF EXISTS webhook_inbox")
        finally:
            await conn.close()

    asyncio.run(drop())


if __name__ == "__main__":
    main()
