"""``ingest kafka up|down|status|fetch`` (a local broker) and ``ingest produce`` (test transactions)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ingestion_patterns.settings import load_settings


def _data_dir_option(function):
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: load_settings().ingest_data_dir / "kafka",
        show_default="INGEST_DATA_DIR/kafka",
        help="The broker's data, config, log and pid file.",
    )(function)


@click.group("kafka")
def kafka_group() -> None:
    """A local Apache Kafka broker (KRaft, one node) from Maven Central's jars, on this machine's Java."""


@kafka_group.command("up")
@click.option("--port", type=int, default=9094, show_default=True, help="PLAINTEXT listener on 127.0.0.1.")
@_data_dir_option
@click.option("--heap", default="512m", show_default=True, help="JVM heap (-Xms/-Xmx).")
@click.option("--timeout", type=float, default=120, show_default=True, help="Seconds to wait until it answers.")
@click.option(
    "--sasl-ssl-port",
    type=int,
    default=None,
    help="Also a SASL_SSL listener (SCRAM-SHA-512, a keytool-made CA, ACLs enforced) on this port; "
    "the PLAINTEXT one stays for admin tooling (super user). Users belong to a new data folder.",
)
@click.option(
    "--scram-user",
    "scram_users",
    multiple=True,
    metavar="NAME[=PASSWORD]",
    help="A SCRAM-SHA-512 user of the SASL_SSL listener (repeatable; a password is generated when "
    "omitted), granted Describe, DescribeConfigs, Read and Write on every topic and Read on every "
    "group.",
)
def up(
    port: int, data_dir: Path, heap: str, timeout: float, sasl_ssl_port: int | None, scram_users: tuple[str, ...]
) -> None:
    """Start the broker in the background (idempotent: a running one is left as it is)."""
    import secrets

    from .. import kafka_broker as broker

    if running := broker.read_pid_file(data_dir):
        click.echo(f"Kafka already running at {running.bootstrap_servers} (pid {running.pid}, data {running.data_dir})")
        return
    sasl = None
    if sasl_ssl_port is not None:
        users = {}
        for spec in scram_users or ("app",):
            name, _, password = spec.partition("=")
            users[name] = password or secrets.token_urlsafe(18)
        sasl = broker.SaslSsl(port=sasl_ssl_port, users=users)
    elif scram_users:
        raise click.UsageError("--scram-user needs --sasl-ssl-port")
    click.echo(
        f"starting Kafka {broker.KAFKA_VERSION} on 127.0.0.1:{port} (first start downloads its jars) ...", err=True
    )
    try:
        started = broker.start_broker(port, data_dir, heap=heap, timeout=timeout, sasl_ssl=sasl)
        for user in sasl.users if sasl else ():
            started.grant(user, topics=("*",), groups=("*",))
    except (broker.BrokerError, TimeoutError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(
        f"Kafka up at {started.bootstrap_servers} (pid {started.pid}); data {started.data_dir}, log {started.log_path}"
    )
    click.echo(f"  export KAFKA_BOOTSTRAP_SERVERS={started.bootstrap_servers}")
    if sasl is not None:
        for user in sasl.users:
            click.echo(f"  SASL_SSL as {user}:")
            for name, value in started.client_settings(user).items():
                click.echo(f"    export {name}={value}")


@kafka_group.command("down")
@_data_dir_option
def down(data_dir: Path) -> None:
    """Stop the broker started by ``up`` (controlled shutdown; data is kept)."""
    from .. import kafka_broker as broker

    running = broker.read_pid_file(data_dir)
    if running is None:
        click.echo("no Kafka broker running for this data folder")
        return
    running.stop()
    click.echo(f"Kafka stopped (pid {running.pid})")


@kafka_group.command("status")
@_data_dir_option
def status(data_dir: Path) -> None:
    """Show whether the broker runs and answers; exit status 1 when it does not run."""
    from .. import kafka_broker as broker

    state = broker.status(data_dir)
    if not state["running"]:
        click.echo(f"Kafka not running (data {state['data_dir']})")
        raise SystemExit(1)
    answering = "answering" if state["answering"] else "NOT answering yet"
    click.echo(
        f"Kafka running at {state['bootstrap_servers']} (pid {state['pid']}), {answering}; "
        f"data {state['data_dir']}, log {state['log']}"
    )


@kafka_group.command("fetch")
def fetch() -> None:
    """Download (and cache) the broker's jars only."""
    from .. import kafka_broker as broker

    try:
        libs = broker.ensure_jars()
    except broker.BrokerError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Kafka {broker.KAFKA_VERSION} jars in {libs}")


@click.command("produce")
@click.option("--count", type=click.IntRange(min=0), default=20, show_default=True, help="Messages to send.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Seconds between messages; 0 sends in batches as fast as possible.",
)
@click.option("--topic", default=None, help="[default: env KAFKA_TOPIC, else transactions]")
@click.option(
    "--bootstrap-servers",
    default=None,
    help="[default: env KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9094 (`ingest kafka up`)]",
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    default=None,
    help="Create the topic with this many partitions, or grow it to them.",
)
@click.option(
    "--bad-ratio",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of bad messages: malformed JSON, negative amounts, missing fields.",
)
@click.option("--keys/--no-keys", default=True, show_default=True, help="Key each message by account_id.")
@click.option("--headers/--no-headers", default=False, show_default=True, help="Add Kafka headers.")
@click.option("--compression", type=click.Choice(["gzip", "snappy", "lz4", "zstd"]), default=None)
@click.option("--seed", type=int, default=None, help="Repeatable messages.")
@click.option(
    "--format",
    "value_format",
    type=click.Choice(["json", "avro"]),
    default="json",
    show_default=True,
    help="JSON values, or Avro in the Confluent wire format (needs --registry).",
)
@click.option(
    "--registry",
    default=None,
    metavar="URL",
    help="With --format avro: the schema registry's Confluent-compatible API, e.g. "
    "http://127.0.0.1:8081/apis/ccompat/v7 (`ingest registry up`); the schema is registered as <topic>-value.",
)
@click.option(
    "--schema-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="With --format avro: the Avro schema (.avsc) to write with instead of the built-in transaction "
    "schema, e.g. another version of it for an evolution test. Fields a transaction lacks take their default.",
)
def produce(
    count,
    interval,
    topic,
    bootstrap_servers,
    partitions,
    bad_ratio,
    keys,
    headers,
    compression,
    seed,
    value_format,
    registry,
    schema_file,
) -> None:
    """Send test transactions to Kafka (the poll pattern's source), with a progress bar."""
    import json

    if value_format == "avro" and not registry:
        raise click.UsageError("--format avro needs --registry URL (the Confluent-compatible API)")
    if value_format != "avro" and (registry or schema_file):
        raise click.UsageError("--registry and --schema-file go with --format avro")
    schema = json.loads(schema_file.read_text()) if schema_file else None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ingestion_patterns.poll.client import kafka_resource

    from ..kafka_producer import produce as produce_messages

    settings = load_settings()
    topic = topic or settings.kafka_topic
    servers = bootstrap_servers or settings.kafka_bootstrap_servers or "127.0.0.1:9094"
    # The same security settings as the Dagster resource, so producing to a Strimzi listener works too.
    kafka = kafka_resource(settings.model_copy(update={"kafka_bootstrap_servers": servers}))
    client_kwargs = kafka.client_kwargs()
    client_kwargs.pop("bootstrap_servers")
    with Progress(
        TextColumn(f"[bold]{topic}[/] @ {servers}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    ) as progress:
        task = progress.add_task("produce", total=count)
        try:
            summary = asyncio.run(
                produce_messages(
                    servers,
                    topic,
                    count,
                    interval=interval,
                    bad_ratio=bad_ratio,
                    partitions=partitions,
                    keys=keys,
                    headers=headers,
                    compression=compression,
                    seed=seed,
                    on_progress=lambda n: progress.advance(task, n),
                    client_kwargs=client_kwargs,
                    value_format=value_format,
                    registry_url=registry,
                    schema=schema,
                )
            )
        except Exception as error:  # noqa: BLE001 - a clear one-line error instead of a traceback
            raise click.ClickException(f"producing to {servers} failed: {error!r}") from None
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(summary.kinds.items()))
    click.echo(f"sent {summary.sent} messages to {topic} ({summary.partitions} partitions): {kinds}")
    if summary.schema_id is not None:
        click.echo(f"Avro values written with schema id {summary.schema_id} (subject {topic}-value)")


COMMANDS = [kafka_group, produce]
