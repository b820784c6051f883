"""``ingest webhook-receiver`` and ``ingest simulate-webhooks``."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_dir() -> Iterator[None]:
    """Give gunicorn's workers one prometheus multiprocess directory, empty at start.

    Must be entered before prometheus_client is imported (it picks its storage at import time).
    A directory made here is removed when the server stops.
    """
    if existing := os.environ.get(METRICS_DIR_ENV):
        path = Path(existing)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # files of a previous run would add to this run's counts
            stale.unlink()
        yield
        return
    made = tempfile.mkdtemp(prefix="webhook-receiver-metrics-")
    os.environ[METRICS_DIR_ENV] = made
    master = os.getpid()
    try:
        yield
    finally:
        if os.getpid() == master:  # forked workers unwind through here too; only the master cleans up
            shutil.rmtree(made, ignore_errors=True)


@click.command("webhook-receiver")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5050, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="gunicorn worker processes.")
@click.option("--inbox", "inbox_url", default=None, metavar="URL",
              help="sqlite:///path or postgresql://… [default: env WEBHOOK_INBOX_URL]")
@click.option("--keepalive", default=75, show_default=True, type=click.IntRange(1), envvar="WEBHOOK_KEEPALIVE_SECONDS",
              help="Seconds an idle connection stays open; keep it above the proxy's idle timeout "
                   "[env WEBHOOK_KEEPALIVE_SECONDS].")
def webhook_receiver(host: str, port: int, workers: int, inbox_url: str | None, keepalive: int) -> None:
    """Run the webhook receiver under gunicorn (POST /webhook/{source_id})."""
    from ..webhooks.config import ConfigError, ReceiverConfig
    from ..webhooks.inbox import describe_inbox_url, open_inbox

    if inbox_url:
        os.environ["WEBHOOK_INBOX_URL"] = inbox_url
    try:
        config = ReceiverConfig.from_env()
        open_inbox(config.inbox_url)  # validates the URL before gunicorn forks workers
    except (ConfigError, ValueError) as error:
        raise click.UsageError(str(error)) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    click.echo(f"webhook receiver on http://{host}:{port} ({workers} worker(s)), "
               f"inbox {describe_inbox_url(config.inbox_url)}", err=True)

    with metrics_dir():
        from ..serving import serve
        from ..webhooks.app import app_from_env

        serve(app_from_env, host=host, port=port, workers=workers, keepalive=keepalive,
              proc_name="webhook-receiver")


@click.command("simulate-webhooks")
@click.option("--count", default=10, show_default=True, type=click.IntRange(1), help="Webhooks to send.")
@click.option("--source", default="default", show_default=True, help="source_id to send to.")
@click.option("--url", default="http://127.0.0.1:5050", show_default=True, help="Receiver base URL.")
@click.option("--secret", default=None, help="Sign with this secret (e.g. whsec_…) [env WEBHOOK_SIMULATOR_SECRET].",
              envvar="WEBHOOK_SIMULATOR_SECRET")
@click.option("--scheme", type=click.Choice(["standard", "github"]), default="standard", show_default=True,
              help="Signature scheme used with --secret.")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 512))
@click.option("--bad-ratio", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of events that break the pipeline's schema (accepted here, rejected by Dagster).")
def simulate_webhooks(count: int, source: str, url: str, secret: str | None, scheme: str, concurrency: int,
                      bad_ratio: float) -> None:
    """Send COUNT real webhooks to a running receiver and summarise the answers."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from ..webhooks.simulate import send_webhooks

    console = Console()
    with Progress(TextColumn("[bold]sending webhooks"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("send", total=count)
        summary = asyncio.run(send_webhooks(url, source, count, secret=secret, scheme=scheme,
                                            concurrency=concurrency, bad_ratio=bad_ratio,
                                            on_result=lambda _result: progress.advance(task)))
    table = Table(title=f"{summary.sent} webhooks to {url}/webhook/{source} in {summary.elapsed_seconds:.2f} s")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    table.add_column("example")
    table.add_row("accepted (202)", str(len(summary.accepted)), summary.accepted[0] if summary.accepted else "")
    table.add_row("duplicate (200)", str(len(summary.duplicates)), summary.duplicates[0] if summary.duplicates else "")
    for label, results in (("rejected", summary.rejected), ("no answer", summary.failed)):
        example = f"{results[0].status or ''} {results[0].reason}".strip() if results else ""
        table.add_row(label, str(len(results)), example[:100])
    if summary.schema_invalid:
        table.add_row("(schema-invalid on purpose)", str(len(summary.schema_invalid)), summary.schema_invalid[0])
    console.print(table)
    if summary.rejected or summary.failed:
        raise SystemExit(1)


COMMANDS = [webhook_receiver, simulate_webhooks]
