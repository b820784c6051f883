"""``ingest mock-api``: serve the mock source API under gunicorn.

Every flag can also come from the environment as ``MOCK_API_<FLAG>`` (the Helm chart configures it
that way), e.g. ``MOCK_API_RECORDS=1000000``.
"""

from __future__ import annotations

from pathlib import Path

import click

from ingestion_patterns.settings import load_settings


def _option(flag: str, **kwargs):
    envvar = "MOCK_API_" + flag.lstrip("-").replace("-", "_").upper()
    kwargs.setdefault("show_default", True)
    return click.option(flag, envvar=envvar, show_envvar=True, **kwargs)


@click.command("mock-api")
@_option("--host", default="127.0.0.1", help="Interface to listen on.")
@_option("--port", default=8000, type=int, help="TCP port.")
@_option("--workers", default=1, type=int, help="gunicorn worker processes (all serve the same data).")
@_option("--records", default=10_000, type=click.IntRange(min=0), help="Base records generated from the seed.")
@_option("--seed", default=42, type=int, help="Seed of the deterministic generator.")
@_option(
    "--token",
    default=lambda: load_settings().source_api_token,
    show_default="$SOURCE_API_TOKEN",
    help="Bearer token clients must send (/v1/records, /admin).",
)
@_option(
    "--api-key",
    default=lambda: load_settings().source_api_key,
    show_default="$SOURCE_API_KEY",
    help="API key /v1/items clients must send in the X-API-Key header.",
)
@_option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: str(load_settings().ingest_data_dir / "mock_api_state.sqlite3"),
    help="SQLite file holding admin mutations; shared by workers and restarts.",
)
@_option("--span-days", default=30.0, type=float, help="Base records' updated_at spread over this many days.")
@_option("--max-page-size", default=50_000, type=click.IntRange(min=1), help="Largest accepted `limit`.")
@_option(
    "--rate-limit",
    default=0.0,
    type=click.FloatRange(min=0),
    help="Requests per second per worker before 429 + Retry-After (0 = unlimited).",
)
@_option("--rate-burst", default=0, type=click.IntRange(min=0), help="Token bucket size (0 = the rate).")
@_option("--latency-ms", default=0.0, type=click.FloatRange(min=0), help="Latency added to every /v1 request.")
@_option("--fault-5xx-ratio", default=0.0, type=click.FloatRange(0, 1), help="Share of /v1 requests failing 503.")
@_option(
    "--fault-timeout-ratio",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Share of /v1 requests that hang (then 504).",
)
@_option("--fault-timeout-seconds", default=30.0, type=click.FloatRange(min=0), help="How long a hang lasts.")
@_option(
    "--fault-truncate-ratio",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Share of /v1 responses cut off midway (connection dropped).",
)
@_option("--fault-seed", default=None, type=int, help="Seed of the fault dice (repeatable faults).")
@_option(
    "--schema-mode",
    default="normal",
    type=click.Choice(["normal", "renamed", "retyped"]),
    help="Serve the contract, or a drifted schema (amount renamed / retyped).",
)
def mock_api(host: str, port: int, workers: int, state: Path, **options) -> None:
    """Serve the mock SaaS source API (records that change over time, faults on demand)."""
    from ingestion_patterns.serving import serve

    from ..mock_api import MockApiConfig, create_app
    from ..mock_api.state import SourceStore

    config = MockApiConfig(state_path=state, **options)
    SourceStore(config).close()  # create or reset the state file once, before workers fork

    async def factory():
        return create_app(config)

    click.echo(
        f"mock API on http://{host}:{port} ({config.records} records, seed {config.seed}, "
        f"{workers} worker(s), state {state})"
    )
    serve(factory, host=host, port=port, workers=workers, proc_name="ingest-mock-api")


COMMANDS = [mock_api]
