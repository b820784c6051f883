"""``ingest registry up|down|status|fetch``: a local Apicurio Registry (Confluent-compatible API for Avro)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ingestion_patterns.settings import load_settings


def _data_dir_option(function):
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: load_settings().ingest_data_dir / "registry",
        show_default="INGEST_DATA_DIR/registry",
        help="The registry's database, log and pid file.",
    )(function)


@click.group("registry")
def registry_group() -> None:
    """A local Apicurio Registry from Maven Central's distribution, on this machine's Java."""


@registry_group.command("up")
@click.option("--port", type=int, default=8081, show_default=True, help="HTTP port on 127.0.0.1.")
@_data_dir_option
@click.option("--heap", default="384m", show_default=True, help="JVM heap (-Xms/-Xmx).")
@click.option(
    "--in-memory/--persistent",
    default=False,
    show_default=True,
    help="Keep schemas in memory (lost at `down`) or in an H2 file in the data folder (ids survive restarts).",
)
@click.option("--timeout", type=float, default=180, show_default=True, help="Seconds to wait until it answers.")
def up(port: int, data_dir: Path, heap: str, in_memory: bool, timeout: float) -> None:
    """Start the registry in the background (idempotent: a running one is left as it is)."""
    from .. import schema_registry as sr

    if running := sr.read_pid_file(data_dir):
        click.echo(f"Apicurio Registry already running at {running.url} (pid {running.pid}, data {running.data_dir})")
        return
    click.echo(
        f"starting Apicurio Registry {sr.APICURIO_VERSION} on 127.0.0.1:{port} (first start downloads it) ...",
        err=True,
    )
    try:
        started = sr.start_registry(port, data_dir, heap=heap, in_memory=in_memory, timeout=timeout)
    except (sr.RegistryError, TimeoutError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"Apicurio Registry up at {started.url} (pid {started.pid}); data {started.data_dir}, log {started.log_path}"
    )
    click.echo(f"  Confluent-compatible API: {started.ccompat_url}")
    click.echo(f"  e.g. ingest produce --format avro --registry {started.ccompat_url}")


@registry_group.command("down")
@_data_dir_option
def down(data_dir: Path) -> None:
    """Stop the registry started by ``up`` (its H2 file, if persistent, is kept)."""
    from .. import schema_registry as sr

    if (running := sr.read_pid_file(data_dir)) is not None:
        running.stop()
    click.echo(f"Apicurio Registry stopped (pid {running.pid})" if running else "no registry runs for this data folder")


@registry_group.command("status")
@_data_dir_option
def status(data_dir: Path) -> None:
    """Show whether the registry runs and answers; exit status 1 when it does not run."""
    from .. import schema_registry as sr

    state = sr.status(data_dir)
    if state["running"]:
        answering = "answering" if state["answering"] else "NOT answering yet"
        click.echo(f"Apicurio Registry at {state['url']} (pid {state['pid']}), {answering}")
        click.echo(
            f"  Confluent-compatible API {state['ccompat_url']}; data {state['data_dir']}, log {state['log_path']}"
        )
    else:
        click.echo(f"Apicurio Registry not running (data {state['data_dir']})")
    sys.exit(0 if state["running"] else 1)


@registry_group.command("fetch")
def fetch() -> None:
    """Download (and cache) the registry only."""
    from .. import schema_registry as sr

    try:
        click.echo(f"Apicurio Registry {sr.APICURIO_VERSION}: {sr.ensure_app()}")
    except sr.RegistryError as error:
        raise click.ClickException(str(error)) from None


COMMANDS = [registry_group]
