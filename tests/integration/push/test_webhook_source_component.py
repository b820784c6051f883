"""The ``WebhookSource`` component type: dg lists it; a scaffolded instance passes ``dg check defs`` as
written, the receiver reads it as a declaration, and the one ``webhook_pending_sensor`` sends its
source's payloads to the instance's own job, which lands them; undeclared sources go to the shipped
instance's job."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dg_project import dg_command, scaffolded_instance

from ingestion_patterns.instance import prepare_dagster_home
from ingestion_patterns.push.inbox import NewWebhook, open_inbox
from ingestion_patterns.push.receiver.config import ReceiverConfig

pytestmark = pytest.mark.integration

TYPE = "ingestion_patterns.components.WebhookSource"


@pytest.fixture
def scaffolded() -> Iterator[tuple[str, Path]]:
    """A new instance scaffolded into the project's defs/ (removed afterwards): its source id and folder."""
    with scaffolded_instance(TYPE, "webhook_sources", "orders") as (name, folder):
        yield name.replace("_", "-"), folder


def test_dg_lists_the_component_types():
    listed = dg_command("list", "components", "--json")
    assert listed.returncode == 0, listed.stderr
    assert TYPE in {item["key"] for item in json.loads(listed.stdout)["items"]}


def test_a_scaffolded_source_checks_is_declared_and_its_payloads_land_through_its_own_job(
    scaffolded, tmp_path, monkeypatch
):
    source_id, folder = scaffolded
    text = (folder / "defs.yaml").read_text()
    assert f"source_id: {source_id}" in text and "# secret_env:" in text, "commented defaults"
    checked = dg_command("check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # The receiver reads it as a declaration, without Dagster: declared, so not a 404 when undeclared are refused.
    receiver = ReceiverConfig.from_env({"WEBHOOK_ACCEPT_UNDECLARED_SOURCES": "false"})
    assert receiver.is_known(source_id) and receiver.is_known("test-source")
    assert not receiver.is_known("somebody-else")

    inbox_url = f"sqlite:///{tmp_path / 'inbox.sqlite3'}"
    for name, value in {
        "DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "WEBHOOK_INBOX_URL": inbox_url,
        "INGEST_DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(tmp_path / "dagster")))

    async def fill() -> None:
        async with open_inbox(inbox_url) as inbox:
            body = json.dumps({"timestamp": "2026-01-01T00:00:00Z", "data": 1}).encode()
            now = datetime.now(UTC)
            for source in (source_id, "undeclared-one"):
                for number in range(3):
                    await inbox.put(NewWebhook(source, f"{source}-{number}", body, {}, now))

    asyncio.run(fill())

    from ingestion_patterns.definitions import defs

    definitions = defs()
    asset = source_id.replace("-", "_") + "_webhooks"
    job = source_id.replace("-", "_") + "_webhook_job"
    sensor = definitions.resolve_sensor_def("webhook_pending_sensor")
    with dg.build_sensor_context(
        instance=instance, definitions=definitions, resources=definitions.resources
    ) as context:
        requests = sensor.evaluate_tick(context).run_requests or []
    routed = {request.tags["webhook/source_id"]: request for request in requests}
    assert routed[source_id].job_name == job
    assert routed["undeclared-one"].job_name == "webhook_ingestion_job"

    for request in routed.values():
        result = definitions.resolve_job_def(request.job_name).execute_in_process(
            run_config=request.run_config, tags=request.tags, instance=instance
        )
        assert result.success
    landed = result.asset_materializations_for_node("process_webhook_data")[0].metadata["processed"].value
    assert landed == 3
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        counts = dict(conn.execute("SELECT source_id, count(*) FROM ingestion.webhook_data GROUP BY 1").fetchall())
    assert counts == {source_id: 3, "undeclared-one": 3}
    assert definitions.resolve_assets_def(asset).key == dg.AssetKey(asset)


def test_an_instance_lands_only_its_own_source(tmp_path):
    from ingestion_patterns.push.assets import build_webhook_source
    from ingestion_patterns.push.source import WebhookSourceSpec

    orders, _ = build_webhook_source(WebhookSourceSpec(source_id="orders"), asset_name="orders_webhooks", job_name="j")
    with pytest.raises(dg.Failure, match="lands source 'orders' only"):
        dg.materialize(
            [orders],
            resources={
                "duckdb": __import__("dagster_duckdb").DuckDBResource(database=str(tmp_path / "w.duckdb")),
                "webhook_inbox": __import__(
                    "ingestion_patterns.push.resource", fromlist=["WebhookInboxResource"]
                ).WebhookInboxResource(url=f"sqlite:///{tmp_path / 'i.sqlite3'}"),
            },
            run_config={"ops": {"orders_webhooks": {"config": {"source_id": "payments"}}}},
        )


def test_a_json_schema_next_to_the_sources_file_is_the_contract_its_job_lands_by(tmp_path, monkeypatch):
    from ingestion_patterns.definitions import build_definitions
    from ingestion_patterns.settings import load_settings

    (tmp_path / "invoices.schema.json").write_text(
        json.dumps({"type": "object", "properties": {"data": {"type": "object", "required": ["invoice_id"]}}})
    )
    sources = tmp_path / "sources.yaml"
    sources.write_text("webhooks:\n  - {source_id: invoices, json_schema: invoices.schema.json}\n")
    inbox_url = f"sqlite:///{tmp_path / 'inbox.sqlite3'}"
    env = {
        "DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "WEBHOOK_INBOX_URL": inbox_url,
        "INGEST_DATA_DIR": str(tmp_path),
        "INGEST_SOURCES_FILE": str(sources),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(tmp_path / "dagster")))

    async def fill() -> None:
        async with open_inbox(inbox_url) as inbox:
            now = datetime.now(UTC)
            for number, data in enumerate(({"invoice_id": "A-1"}, {"total": 3})):
                body = json.dumps({"timestamp": "2026-01-01T00:00:00Z", "data": data}).encode()
                await inbox.put(NewWebhook("invoices", f"i-{number}", body, {}, now))

    asyncio.run(fill())
    definitions = build_definitions(load_settings())
    result = definitions.resolve_job_def("invoices_webhook_job").execute_in_process(instance=instance)
    assert result.success
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        landed = conn.execute("SELECT event_id FROM ingestion.webhook_data").fetchall()
        rejected = conn.execute("SELECT event_id, reason FROM ingestion.webhook_rejects").fetchall()
    assert landed == [("i-0",)]
    assert rejected == [
        ("i-1", "does not match the source's JSON Schema at $.data: 'invoice_id' is a required property")
    ]
