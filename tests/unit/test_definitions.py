"""The code location loads, and its shape (assets, checks, jobs, sensors, schedules, pools) matches
the snapshot in snapshots/definitions.json. Refresh it on purpose with INGEST_UPDATE_SNAPSHOTS=1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

from ingestion_patterns import warehouse

SNAPSHOT = Path(__file__).with_name("snapshots") / "definitions.json"


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    from ingestion_patterns.definitions import defs

    return defs()


def describe(definitions: dg.Definitions) -> dict:
    assets = {}
    for assets_def in definitions.resolve_asset_graph().assets_defs:
        for spec in assets_def.specs:
            assets[spec.key.to_user_string()] = {
                "group": spec.group_name,
                "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
                "kinds": sorted(spec.kinds),
                "pool": assets_def.op.pool if assets_def.is_executable else None,
            }
    checks = sorted(
        f"{key.asset_key.to_user_string()}:{key.name}"
        for assets_def in definitions.resolve_asset_graph().assets_defs
        for key in assets_def.check_keys
    )
    return {
        "assets": dict(sorted(assets.items())),
        "asset_checks": checks,
        "jobs": sorted(job.name for job in definitions.resolve_all_job_defs() if not job.name.startswith("__")),
        "sensors": sorted(sensor.name for sensor in definitions.sensors or []),
        "schedules": sorted(
            f"{schedule.name} {schedule.cron_schedule} {schedule.execution_timezone}"
            for schedule in (definitions.resolve_schedule_def(s.name) for s in definitions.schedules or [])
        ),
        "resources": sorted(definitions.resources or {}),
    }


def test_definitions_match_the_snapshot(definitions):
    shape = describe(definitions)
    if os.environ.get("INGEST_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(shape, indent=2) + "\n")
    assert shape == json.loads(SNAPSHOT.read_text())


def test_the_reference_example_names_are_kept(definitions):
    shape = describe(definitions)
    for asset in (
        "process_webhook_data",
        "extract_source_data",
        "load_to_storage",
        "poll_kafka_events",
        "process_kafka_events",
    ):
        assert asset in shape["assets"]
    assert "extract_source_data:validate_extracted_data" in shape["asset_checks"]
    assert {"webhook_pending_sensor", "kafka_polling_sensor"} <= set(shape["sensors"])
    assert any(s.startswith("daily_pull_schedule 0 0 * * * UTC") for s in shape["schedules"])


def test_every_asset_that_writes_duckdb_runs_in_the_one_slot_pool(definitions):
    for key, asset in describe(definitions)["assets"].items():
        if "duckdb" in asset["kinds"]:
            assert asset["pool"] == warehouse.DUCKDB_POOL, key


def test_local_instance_limits_the_pool_to_one_slot():
    import yaml

    from ingestion_patterns.instance import INSTANCE_YAML

    config = yaml.safe_load(INSTANCE_YAML.read_text())
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["concurrency"]["pools"]["granularity"] == "op"
