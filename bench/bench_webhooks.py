"""Benchmark: durable accepted webhooks/s versus the same receiver's no-op path (not a test).

For 1 and 2 gunicorn workers, the receiver runs on this machine's loopback, with its one source
(``bench``) declared and undeclared ones refused as the chart sets it, with the SQLite inbox
(every 202 fsynced; the local default) and, side by side, with the ``noop://`` inbox (parse the
JSON, answer 202, store nothing) and a bare aiohttp handler that reads the body and answers 202,
served by the same gunicorn worker class and settings in its own process (the ceiling of the
stack). ``wrk`` drives 32 connections for 10 s at each in turn, for several rounds, each request
with a unique webhook-id (bench/webhooks.lua). Printed per worker count: median requests/s, p50/p99
latency, the ratios durable/no-op and no-op/bare (medians of the per-round ratios), the server's CPU
time per request (all its processes), and a check that the inbox holds exactly what the server
acknowledged (its /metrics count, which wrk's count can trail by the requests in flight when it
stops). ``--postgres URL`` adds the PostgreSQL inbox.

    uv run python bench/bench_webhooks.py [--duration 10] [--rounds 5] [--connections 32] [--postgres URL]

Targets: durable/no-op >= 0.8 (issue 2 asked 0.6) with p99 <= 25 ms; no-op/bare >= 0.7 (issue 11).
The CPU is shared with whatever else runs, so read the ratios (their sides measured seconds apart,
round after round) and the CPU per request, not absolute requests/s.

``--serve-bare PORT`` runs only the bare server (what the benchmark starts as its own process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ingestion_devtools.processes import ManagedProcess, free_port

LUA = Path(__file__).with_name("webhooks.lua")
BARE = "bare"
BENCH_LINE = re.compile(r"BENCH (.*)")
ACCEPTED_LINE = re.compile(r'^webhook_accepted_total\{source_id="bench"\} (\S+)$', re.MULTILINE)


@dataclass
class Result:
    label: str
    workers: int
    rounds: list[dict[str, int]]  # wrk's figures, one per round
    cpu_seconds: list[float] = field(default_factory=list)  # the receiver's CPU time, per round
    check: str = ""

    @property
    def cpu_us_per_request(self) -> float:
        """Server CPU per accepted request: less sensitive to other load than requests/s."""
        return 1e6 * sum(self.cpu_seconds) / max(1, sum(run["accepted"] for run in self.rounds))

    def per_second(self, run: dict[str, int]) -> float:
        return run["accepted"] * 1e6 / run["duration_us"]

    @property
    def requests_per_second(self) -> float:
        return statistics.median(self.per_second(run) for run in self.rounds)

    @property
    def p50_ms(self) -> float:
        return statistics.median(run["p50_us"] for run in self.rounds) / 1000

    @property
    def p99_ms(self) -> float:
        return statistics.median(run["p99_us"] for run in self.rounds) / 1000


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
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_RUN_TAG": tag},
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


def process_tree_cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of ``pid`` and its descendants (gunicorn master and workers)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(child) for child in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def count_stored(inbox_url: str) -> int:
    from ingestion_patterns.push.inbox import open_inbox

    async def count() -> int:
        async with open_inbox(inbox_url) as inbox:
            return sum(summary.count for summary in await inbox.pending_sources())

    return asyncio.run(count())


def declare_bench_source(workdir: Path) -> Path:
    """The sources file that declares the one source wrk posts to (unsigned, as no-op and bare are)."""
    path = workdir / "sources.yaml"
    path.write_text("webhooks:\n  - source_id: bench\n")
    return path


class Target:
    """One receiver under test, kept running across the rounds (an idle receiver costs no CPU)."""

    def __init__(self, label: str, inbox_url: str, workers: int, workdir: Path, sources_file: Path):
        self.label, self.inbox_url, self.workers = label, inbox_url, workers
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        log_path = workdir / f"receiver-{label}-{workers}.log"
        if label == BARE:
            command = [sys.executable, __file__, "--serve-bare", str(port), "--workers", str(workers)]
            self.process = ManagedProcess(f"bare-{workers}", command, log_path=log_path)
        else:
            self.process = ManagedProcess.ingest(
                f"receiver-{label}-{workers}",
                "webhook-receiver",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--inbox",
                inbox_url,
                env={
                    "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"metrics-{label}-{workers}"),
                    # The hot path with declared sources, as the chart runs it: undeclared ids get 404.
                    "INGEST_SOURCES_FILE": str(sources_file),
                    "WEBHOOK_ACCEPT_UNDECLARED_SOURCES": "false",
                },
                log_path=log_path,
            )
        self.result = Result(label, workers, [])
        self.wrk_accepted = 0
        self.failures = 0

    def run(self, wrk: str, *, connections: int, duration: int, measured: bool) -> None:
        cpu_before = process_tree_cpu_seconds(self.process.proc.pid)
        figures = run_wrk(
            wrk,
            f"{self.base}/webhook/bench",
            connections=connections,
            duration=duration,
            tag=f"{self.label}-{self.workers}-{time.time_ns()}",
        )
        self.wrk_accepted += figures["accepted"]
        self.failures += figures["other"] + figures["errors_connect"] + figures["errors_timeout"]
        if measured:
            self.result.rounds.append(figures)
            self.result.cpu_seconds.append(process_tree_cpu_seconds(self.process.proc.pid) - cpu_before)

    def check(self, connections: int, runs: int) -> None:
        """Compare what the server acked (its /metrics) with wrk's count and with the inbox."""
        if self.label == BARE:
            self.result.check = "(stores nothing)" + (f"; {self.failures} non-202/errors" if self.failures else "")
            return
        server_accepted = settled_accepted_count(self.base)
        check = f"server acked {server_accepted} (wrk read {self.wrk_accepted})"
        # wrk stops with requests in flight: the server may have accepted a few whose 202 wrk never read.
        if not self.wrk_accepted <= server_accepted <= self.wrk_accepted + runs * connections:
            check += " MISMATCH between wrk and the server's count"
        if self.label != "no-op":
            stored = count_stored(self.inbox_url)
            check += f", inbox holds {stored}: " + ("OK" if stored == server_accepted else "MISMATCH")
        if self.failures:
            check += f"; {self.failures} non-202/errors"
        self.result.check = check


def measure_workers(wrk: str, workers: int, args, workdir: Path, sources_file: Path) -> list[Result]:
    """Start the no-op and durable receivers, then alternate wrk between them round by round, so a
    burst of load from elsewhere on the machine hits both sides of the ratio alike."""
    backends = [(BARE, ""), ("no-op", "noop://"), ("sqlite", f"sqlite:///{workdir}/inbox-{workers}.sqlite3")]
    if args.postgres:
        backends.append(("postgresql", args.postgres))
    targets = [Target(label, url, workers, workdir, sources_file) for label, url in backends]
    try:
        for target in targets:
            target.process.start()
        for target in targets:
            target.process.wait_http(f"{target.base}/ready", timeout=90)
            target.run(wrk, connections=args.connections, duration=2, measured=False)  # warm-up
        for round_number in range(1, args.rounds + 1):
            for target in targets:
                print(
                    f"  round {round_number}/{args.rounds}: {target.label} inbox, {workers} worker(s), "
                    f"{args.connections} connections, {args.duration} s",
                    flush=True,
                )
                target.run(wrk, connections=args.connections, duration=args.duration, measured=True)
        for target in targets:
            target.check(args.connections, args.rounds + 1)
    finally:
        for target in targets:
            target.process.stop()
    if args.postgres:
        _drop_postgres_inbox(args.postgres)
    return [target.result for target in targets]


def serve_bare(port: int, workers: int) -> None:
    """The stack's ceiling: a handler that reads the body and answers 202, under the receiver's
    gunicorn settings (``serve``'s defaults, as ``ingest webhook-receiver`` uses them)."""
    from aiohttp import web

    from ingestion_patterns.serving import serve

    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202)

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ready")

    async def factory() -> web.Application:
        app = web.Application()
        app.router.add_post("/webhook/{source_id}", accept)
        app.router.add_get("/ready", ready)
        return app

    serve(factory, host="127.0.0.1", port=port, workers=workers, proc_name="bench-bare-aiohttp")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating measurements per receiver")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also measure the PostgreSQL inbox at this URL (its webhook_inbox table must be empty or absent)",
    )
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare, args.workers[0])
        return
    wrk = ensure_wrk()
    print(f"{os.cpu_count()} CPUs; load and server share them (and so does anything else running now)")
    # On the project's disk, not a tmpfs, so the fsync the ack waits for is a real one.
    workdir = Path(tempfile.mkdtemp(prefix="bench-webhooks-", dir=Path.cwd()))
    results: list[Result] = []
    try:
        sources_file = declare_bench_source(workdir)
        for workers in args.workers:
            results.extend(measure_workers(wrk, workers, args, workdir, sources_file))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"medians over {args.rounds} rounds of {args.duration} s; ratio = median of the per-round ratios")
    print(
        f"{'server':<11} {'workers':>7} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'vs no-op':>8} {'vs bare':>8} "
        f"{'CPU us/req':>10}  {'rounds (req/s)':<24} nothing lost?"
    )
    for result in results:
        rounds = "/".join(f"{result.per_second(run):.0f}" for run in result.rounds)
        print(
            f"{result.label:<11} {result.workers:>7} {result.requests_per_second:>9.0f} {result.p50_ms:>7.1f} "
            f"{result.p99_ms:>7.1f} {_ratio(results, result, 'no-op'):>8.2f} {_ratio(results, result, BARE):>8.2f} "
            f"{result.cpu_us_per_request:>10.1f}  {rounds:<24} {result.check}"
        )
    print(
        "\ntargets: durable/no-op >= 0.80 with p99 <= 25 ms, no-op/bare >= 0.70, "
        "and the inbox holds exactly what the server acked"
    )


def _ratio(results: list[Result], result: Result, baseline_label: str) -> float:
    """The median of the per-round ratios of ``result`` to the same worker count's ``baseline_label``."""
    baseline = next(r for r in results if r.workers == result.workers and r.label == baseline_label)
    return statistics.median(
        result.per_second(run) / baseline.per_second(base)
        for run, base in zip(result.rounds, baseline.rounds, strict=True)
    )


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
