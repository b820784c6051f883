"""``ingest demo`` (the main job on the embedded default) and ``ingest dev`` (UI + services)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from ingestion_patterns import warehouse
from ingestion_patterns.declarations import package_defs_folder
from ingestion_patterns.instance import prepare_dagster_home
from ingestion_patterns.settings import Settings, load_settings

from ..local_services import (
    KafkaUnavailable,
    RegistryUnavailable,
    log_dir,
    start_kafka,
    start_mock_api,
    start_receiver,
    start_registry,
)
from ..processes import ManagedProcess, free_port

if TYPE_CHECKING:  # Dagster is imported when a command runs, so every other `ingest` command starts fast.
    import dagster as dg

console = Console()

# The code location under the same name as the dg project's (app/dg.toml) and the cluster's.
WORKSPACE_YAML = """\
load_from:
  - python_module:
      module_name: ingestion_patterns.definitions
      location_name: ingestion_patterns
"""


def _stop_on_signals() -> None:
    """Make SIGTERM and SIGINT unwind the ExitStack, which stops every service this command started.

    SIGINT is set explicitly: a process started in the background inherits it ignored.
    """

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _load_definitions(settings: Settings) -> dg.Definitions:
    from ingestion_patterns.definitions import build_definitions

    # The declared REST API sources read their URL and credentials from the environment (their
    # defs.yaml names the variables), as in `ingest dev` and in the cluster: export this run's.
    os.environ.update(
        {
            "SOURCE_API_URL": settings.source_api_url,
            "SOURCE_API_TOKEN": settings.source_api_token,
            "SOURCE_API_KEY": settings.source_api_key,
        }
    )
    return build_definitions(settings)


# The Avro topic example the demo declares beside the shipped instances (with the registry it needs).
PAYMENTS_EXAMPLE = package_defs_folder() / "kafka_topics" / "examples" / "payments.yaml"


def _declare_payments(settings: Settings, registry_url: str) -> Settings:
    """Declare the ``payments`` example (Avro) as the chart would: an entry of a sources file's
    ``kafka_topics:`` list (INGEST_SOURCES_FILE), its registry in SCHEMA_REGISTRY_URL."""
    import yaml

    attributes = yaml.safe_load(PAYMENTS_EXAMPLE.read_text())["attributes"]
    sources = settings.ingest_data_dir / "demo-sources.yaml"
    sources.write_text(
        "# Written by `ingest demo`: the payments example (app/ingestion_patterns/defs/kafka_topics/examples).\n"
        + yaml.safe_dump({"kafka_topics": [attributes]}, sort_keys=False)
    )
    os.environ["SCHEMA_REGISTRY_URL"] = registry_url
    return settings.model_copy(update={"ingest_sources_file": str(sources)})


# Runs log to the Dagster instance (see them in `ingest dev`); the terminal gets warnings only.
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _run_job(
    definitions: dg.Definitions, instance: dg.DagsterInstance, job_name: str, run_config=None, tags=None
) -> bool:
    run_config = dict(run_config or {})
    run_config["loggers"] = run_config.get("loggers") or _QUIET["loggers"]
    result = definitions.resolve_job_def(job_name).execute_in_process(
        instance=instance, raise_on_error=False, run_config=run_config, tags=tags
    )
    status = "[green]succeeded[/]" if result.success else "[red]failed[/]"
    console.print(f"  run {result.run_id[:8]} of [bold]{job_name}[/] {status}")
    return result.success


def _run_sensor(definitions: dg.Definitions, instance: dg.DagsterInstance, sensor_name: str) -> bool:
    """Evaluate a sensor once, as the daemon would, and execute the runs it requests."""
    import dagster as dg

    sensor = definitions.resolve_sensor_def(sensor_name)
    with dg.build_sensor_context(
        instance=instance, definitions=definitions, resources=definitions.resources, sensor_name=sensor_name
    ) as context:
        evaluation = sensor.evaluate_tick(context)
    if evaluation.skip_message:
        console.print(f"  {sensor_name} skipped: {evaluation.skip_message}")
    ok = True
    for request in evaluation.run_requests or []:
        job_name = request.job_name or sensor.job_name
        assert job_name, f"{sensor_name} requested a run of no job"
        ok &= _run_job(definitions, instance, job_name, run_config=request.run_config, tags=request.tags)
    return ok


def _counts(settings: Settings) -> dict[str, int]:
    conn = warehouse.connect(settings.warehouse_path)
    try:
        return warehouse.table_counts(conn)
    finally:
        conn.close()


def _print_counts(settings: Settings, before: dict[str, int], after: dict[str, int]) -> None:
    table = Table(title=f"Rows in {settings.warehouse_path}")
    table.add_column("table")
    table.add_column("landed now", justify="right")
    table.add_column("total", justify="right")
    for name, total in after.items():
        table.add_row(f"ingestion.{name}", str(total - before.get(name, 0)), str(total))
    console.print(table)


@click.command()
@click.option("--webhooks", "webhook_count", default=100, show_default=True, help="Webhooks to send.")
@click.option("--records", default=20_000, show_default=True, help="Records in the mock source API.")
@click.option("--events", default=2_000, show_default=True, help="Kafka events to produce.")
@click.option("--bad-ratio", default=0.05, show_default=True, help="Share of invalid webhooks and events.")
def demo(webhook_count: int, records: int, events: int, bad_ratio: float) -> None:
    """Run all three patterns end to end on the embedded default, then print what landed.

    Starts the webhook receiver, the mock API and (with Java) a Kafka broker as local processes,
    sends webhooks, produces events, runs the pipelines and stops everything it started.
    """
    import dagster as dg

    from ..kafka_producer import ensure_topic, produce
    from ..webhook_simulator import send_webhooks

    _stop_on_signals()
    settings = load_settings()
    home = prepare_dagster_home(settings=settings)
    before = _counts(settings)
    ok = True
    with ExitStack() as stack, dg.DagsterInstance.from_config(str(home)) as instance:
        console.rule("starting the local services")
        receiver = start_receiver(stack, settings, port=free_port())
        console.print(f"  webhook receiver at {receiver.url}")
        api = start_mock_api(stack, settings, port=free_port(), records=records)
        settings = settings.model_copy(update={"source_api_url": api.url})
        console.print(f"  mock API with {records} records at {api.url}")
        kafka_skipped, avro_skipped, registry_url = "", "", ""
        registry_ready = None
        if settings.ingest_sources_file:
            avro_skipped = f"INGEST_SOURCES_FILE is set ({settings.ingest_sources_file}): the demo leaves it as it is"
        else:
            try:  # started first: it comes up while the broker does
                registry_ready = start_registry(stack, settings, port=free_port())
            except RegistryUnavailable as reason:
                avro_skipped = str(reason)
        if not settings.kafka_bootstrap_servers:
            try:
                broker = start_kafka(stack, settings, port=free_port())
                settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.url})
                console.print(f"  local Kafka broker at {broker.url}")
            except KafkaUnavailable as reason:
                kafka_skipped = str(reason)
        if registry_ready is not None:
            try:
                registry_url = registry_ready().url
                console.print(f"  Apicurio Registry at {registry_url}")
                settings = _declare_payments(settings, registry_url)
            except RegistryUnavailable as reason:
                avro_skipped = str(reason)
        definitions = _load_definitions(settings)

        console.rule("[bold]push[/]: webhooks -> durable inbox -> webhook_data")
        sent = asyncio.run(send_webhooks(receiver.url, "demo", webhook_count, bad_ratio=bad_ratio))
        console.print(f"  sent {webhook_count} webhooks to {receiver.url}: {sent.describe()}")
        ok &= _run_sensor(definitions, instance, "webhook_pending_sensor")

        console.rule("[bold]pull[/]: mock API -> raw_extract -> final_data (and items, another shape)")
        ok &= _run_job(definitions, instance, "pull_job")
        # The same records declared in another shape (defs/rest_apis/items): envelope, Link, API key.
        ok &= _run_job(definitions, instance, "items_pull_job")

        console.rule("[bold]poll[/]: Kafka -> kafka_events (and payments, Avro with a schema registry)")
        if kafka_skipped:
            console.print(f"  [yellow]polling skipped:[/] {kafka_skipped}")
        else:
            bootstrap, topic = settings.kafka_bootstrap_servers, settings.kafka_topic
            produced = asyncio.run(produce(bootstrap, topic, events, partitions=3, bad_ratio=bad_ratio))
            console.print(f"  produced {produced.sent} events to {topic} ({produced.bad} invalid on purpose)")
            if registry_url:
                paid = asyncio.run(
                    produce(
                        bootstrap,
                        "payments",
                        events,
                        partitions=3,
                        bad_ratio=bad_ratio,
                        value_format="avro",
                        registry_url=registry_url,
                    )
                )
                # Its dead-letter topic, made beforehand as an operator would (a KafkaTopic on Strimzi).
                asyncio.run(ensure_topic("payments.dlq", 1, bootstrap_servers=bootstrap))
                console.print(
                    f"  produced {paid.sent} Avro payments (schema id {paid.schema_id}; {paid.bad} invalid on purpose)"
                )
            else:
                console.print(f"  [yellow]Avro payments skipped:[/] {avro_skipped}")
            # One sensor for every declared topic: a run per topic with messages past its stored offsets.
            ok &= _run_sensor(definitions, instance, "kafka_polling_sensor")
        console.rule("stopping the services the demo started")
    _print_counts(settings, before, _counts(settings))
    if not ok:
        raise click.ClickException("a run failed; see the Dagster UI (`ingest dev`) for its logs")


@click.command()
@click.option("--port", default=3000, show_default=True, help="Dagster UI port.")
@click.option("--receiver-port", default=5050, show_default=True)
@click.option("--api-port", default=8000, show_default=True)
@click.option("--kafka-port", default=9094, show_default=True)
@click.option("--records", default=20_000, show_default=True, help="Records in the mock source API.")
@click.option("--kafka/--no-kafka", default=True, show_default=True, help="Start the local Kafka broker.")
def dev(port: int, receiver_port: int, api_port: int, kafka_port: int, records: int, kafka: bool) -> None:
    """The Dagster UI and daemon plus the receiver, mock API and Kafka broker; Ctrl-C stops all."""
    _stop_on_signals()
    settings = load_settings()
    home = prepare_dagster_home(settings=settings)
    with ExitStack() as stack:
        receiver = start_receiver(stack, settings, port=receiver_port)
        api = start_mock_api(stack, settings, port=api_port, records=records)
        settings = settings.model_copy(update={"source_api_url": api.url})
        console.print(f"webhook receiver  {receiver.url}   (POST /webhook/<source>)")
        console.print(f"mock source API   {api.url}")
        if settings.kafka_bootstrap_servers:
            console.print(f"Kafka             {settings.kafka_bootstrap_servers} (configured)")
        elif not kafka:
            console.print("[yellow]Kafka polling skipped:[/] --no-kafka")
        else:
            try:
                broker = start_kafka(stack, settings, port=kafka_port)
                settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.url})
                console.print(f"Kafka broker      {broker.url}")
            except KafkaUnavailable as reason:
                console.print(f"[yellow]Kafka polling skipped:[/] {reason}")
        workspace = home / "workspace.yaml"
        workspace.write_text(WORKSPACE_YAML)
        ui = ManagedProcess(
            "dagster",
            [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
            env={**settings.env(), "DAGSTER_HOME": str(home)},
            log_path=log_dir(settings) / "dagster.log",
        ).start()
        stack.callback(ui.stop)
        ui.wait_http(f"http://127.0.0.1:{port}/server_info", timeout=180)
        console.print(f"Dagster UI        http://127.0.0.1:{port}   (DAGSTER_HOME={home})")
        console.print(f"logs              {log_dir(settings)}/")
        console.print("[bold]Ctrl-C stops everything.[/]")
        try:
            while ui.running:
                time.sleep(0.5)
            raise click.ClickException(f"dagster dev exited with {ui.started.returncode}")
        except KeyboardInterrupt:
            console.print("\nstopping…")
