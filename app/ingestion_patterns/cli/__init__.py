"""``ingest``: the one command line of the platform.

The runtime images carry only the runtime commands (``webhook-receiver``). The development tools
(``demo``, ``dev``, ``mock-api``, ``kafka``, ``produce``, ``simulate-webhooks``) come from the
``ingestion_devtools`` package, and are listed when it is installed (``uv sync`` does, by default).
"""

from __future__ import annotations

import importlib.util

import click

from .receiver import webhook_receiver


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ingestion-patterns")
def main() -> None:
    """Push, pull and poll ingestion on Dagster, landing in DuckDB."""


main.add_command(webhook_receiver)

if importlib.util.find_spec("ingestion_devtools") is not None:
    from ingestion_devtools.cli import COMMANDS as _DEV_COMMANDS

    for _command in _DEV_COMMANDS:
        main.add_command(_command)
