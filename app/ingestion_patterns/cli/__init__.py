"""``ingest``: the one command line of the platform.

Each pattern's commands live in their own module and are listed in that module's ``COMMANDS``.
"""

from __future__ import annotations

import importlib

import click

from .. import settings

# Modules whose COMMANDS are added to ``ingest``, in help order.
_COMMAND_MODULES = ("demo", "webhooks", "mock_api", "kafka")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ingestion-patterns")
def main() -> None:
    """Push, pull and poll ingestion on Dagster, landing in DuckDB."""
    settings.apply_defaults()


for _name in _COMMAND_MODULES:
    for _command in importlib.import_module(f"{__name__}.{_name}").COMMANDS:
        main.add_command(_command)
