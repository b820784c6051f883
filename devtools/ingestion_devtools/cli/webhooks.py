"""``ingest simulate-webhooks``: real, optionally signed webhooks sent to a running receiver."""

from __future__ import annotations

import asyncio

import click

from ..webhook_simulator import Scheme


@click.command("simulate-webhooks")
@click.option("--count", default=10, show_default=True, type=click.IntRange(1), help="Webhooks to send.")
@click.option("--source", default="default", show_default=True, help="source_id to send to.")
@click.option("--url", default="http://127.0.0.1:5050", show_default=True, help="Receiver base URL.")
@click.option(
    "--secret",
    default=None,
    help="Sign with this secret (e.g. whsec_…) [env WEBHOOK_SIMULATOR_SECRET].",
    envvar="WEBHOOK_SIMULATOR_SECRET",
)
@click.option(
    "--scheme",
    type=click.Choice(["standard", "github"]),
    default="standard",
    show_default=True,
    help="Signature scheme used with --secret.",
)
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 512))
@click.option(
    "--bad-ratio",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of events that break the pipeline's schema (accepted here, rejected by Dagster).",
)
def simulate_webhooks(
    count: int, source: str, url: str, secret: str | None, scheme: Scheme, concurrency: int, bad_ratio: float
) -> None:
    """Send COUNT real webhooks to a running receiver and summarise the answers."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from ..webhook_simulator import send_webhooks

    console = Console()
    with Progress(
        TextColumn("[bold]sending webhooks"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task("send", total=count)
        summary = asyncio.run(
            send_webhooks(
                url,
                source,
                count,
                secret=secret,
                scheme=scheme,
                concurrency=concurrency,
                bad_ratio=bad_ratio,
                on_result=lambda _result: progress.advance(task),
            )
        )
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
