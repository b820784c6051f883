"""``ingest webhook-receiver``: the receiver under gunicorn."""

from __future__ import annotations

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
def metrics_dir() -> Iterator[str]:
    """One prometheus multiprocess directory for gunicorn's workers, empty at start.

    prometheus_client picks its storage when it is imported, from PROMETHEUS_MULTIPROC_DIR, so the
    directory reaches the workers through gunicorn's own environment (``serve(env=…)``), set in the
    master before any worker imports the app. A directory made here is removed when the server stops.
    """
    if existing := os.environ.get(METRICS_DIR_ENV):
        path = Path(existing)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # files of a previous run would add to this run's counts
            stale.unlink()
        yield existing
        return
    made = tempfile.mkdtemp(prefix="webhook-receiver-metrics-")
    master = os.getpid()
    try:
        yield made
    finally:
        if os.getpid() == master:  # forked workers unwind through here too; only the master cleans up
            shutil.rmtree(made, ignore_errors=True)


@click.command("webhook-receiver")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5050, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="gunicorn worker processes.")
@click.option(
    "--inbox",
    "inbox_url",
    default=None,
    metavar="URL",
    help="sqlite:///path or postgresql://… [default: env WEBHOOK_INBOX_URL]",
)
@click.option(
    "--keepalive",
    default=75,
    show_default=True,
    type=click.IntRange(1),
    envvar="WEBHOOK_KEEPALIVE_SECONDS",
    help="Seconds an idle connection stays open; keep it above the proxy's idle timeout "
    "[env WEBHOOK_KEEPALIVE_SECONDS].",
)
def webhook_receiver(host: str, port: int, workers: int, inbox_url: str | None, keepalive: int) -> None:
    """Run the webhook receiver under gunicorn (POST /webhook/{source_id})."""
    from ..push.inbox import describe_inbox_url, open_inbox
    from ..push.receiver.config import ConfigError, ReceiverConfig
    from ..settings import load_settings

    try:
        settings = load_settings()
        if inbox_url:
            settings = settings.model_copy(update={"webhook_inbox_url": inbox_url})
        config = ReceiverConfig.from_settings(settings, workers=workers)
        open_inbox(config.inbox_url)  # validates the URL before gunicorn forks workers
    except (ConfigError, ValueError) as error:
        raise click.UsageError(str(error)) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    click.echo(
        f"webhook receiver on http://{host}:{port} ({workers} worker(s)), inbox {describe_inbox_url(config.inbox_url)}",
        err=True,
    )

    with metrics_dir() as metrics:
        from ..push.receiver.app import app_factory
        from ..serving import serve

        serve(
            app_factory(config),
            host=host,
            port=port,
            workers=workers,
            keepalive=keepalive,
            proc_name="webhook-receiver",
            env={METRICS_DIR_ENV: metrics},
        )
