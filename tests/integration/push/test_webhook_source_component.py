"""The ``WebhookSource`` component type: dg lists it; a scaffolded instance passes ``dg check defs`` as
written, the receiver reads it as a declaration, and the one ``webhook_pending_sensor`` sends its
source's payloads to the instance's own job, which lands them; undeclared sources go to the shipped
instance's job."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
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
            now = time.time()
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
            now = time.time()
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


def test_a_source_with_its_own_table_lands_there_and_retention_dedupes_it(tmp_path, monkeypatch):
    from ingestion_patterns import warehouse
    from ingestion_patterns.definitions import build_definitions
    from ingestion_patterns.maintenance.warehouse_retention import dedupe_webhook_data, webhook_tables
    from ingestion_patterns.settings import load_settings

    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "webhooks:\n"
        "  - {source_id: invoices, table: invoice_events, required_fields: [data]}\n"
        "  - {source_id: refunds}\n"
    )
    inbox_url = f"sqlite:///{tmp_path / 'inbox.sqlite3'}"
    db = tmp_path / "warehouse.duckdb"
    for name, value in {
        "DUCKDB_PATH": str(db),
        "WEBHOOK_INBOX_URL": inbox_url,
        "INGEST_DATA_DIR": str(tmp_path),
        "INGEST_SOURCES_FILE": str(sources),
    }.items():
        monkeypatch.setenv(name, value)
    instance = dg.DagsterInstance.from_config(str(prepare_dagster_home(tmp_path / "dagster")))

    async def fill(event_ids: list[str]) -> None:
        async with open_inbox(inbox_url) as inbox:
            now = time.time()
            for source in ("invoices", "refunds"):
                for event_id in event_ids:
                    data = {"timestamp": "2026-01-01T00:00:00Z", "data": {"n": event_id}}
                    body = json.dumps(data if event_id != "bad" else {"timestamp": "x"}).encode()
                    await inbox.put(NewWebhook(source, event_id, body, {}, now))

    def run_both() -> None:
        for job in ("invoices_webhook_job", "refunds_webhook_job"):
            assert definitions.resolve_job_def(job).execute_in_process(instance=instance).success

    def rows(table: str) -> list[tuple[str, str]]:
        with duckdb.connect(str(db), read_only=True) as conn:
            return conn.execute(f"SELECT source_id, event_id FROM ingestion.{table} ORDER BY ALL").fetchall()

    definitions = build_definitions(load_settings())
    assert (
        "ingestion.invoice_events"
        in (definitions.resolve_assets_def("invoices_webhooks").descriptions_by_key or {})[
            dg.AssetKey("invoices_webhooks")
        ]
    )
    asyncio.run(fill(["e-1", "e-2", "bad"]))
    run_both()
    assert rows("invoice_events") == [("invoices", "e-1"), ("invoices", "e-2")]
    assert rows("invoice_events_rejects") == [("invoices", "bad")]
    assert rows("webhook_data") == [("refunds", "e-1"), ("refunds", "e-2")]
    assert rows("webhook_rejects") == [("refunds", "bad")]

    # An id the inbox has forgotten (its retention purged it) lands again; retention's dedup finds the
    # copy in the declared table as in the shared one, and keeps the first.
    async def forget() -> None:
        async with open_inbox(inbox_url) as inbox:
            await inbox.purge_done(0, batch_rows=100)

    asyncio.run(forget())
    asyncio.run(fill(["e-1"]))
    run_both()
    assert len(rows("invoice_events")) == len(rows("webhook_data")) == 3
    with warehouse.connect(db) as conn:
        assert webhook_tables(conn) == ["invoice_events", "webhook_data"]
        assert dedupe_webhook_data(conn) == 2
    assert rows("invoice_events") == [("invoices", "e-1"), ("invoices", "e-2")]
    assert rows("webhook_data") == [("refunds", "e-1"), ("refunds", "e-2")]


def test_a_declared_table_must_be_a_table_name_and_not_a_shared_one():
    from pydantic import ValidationError

    from ingestion_patterns.push.source import WebhookSourceSpec

    for bad in ("Invoices", "webhook_data", "webhook_rejects", "a-b", "1x"):
        with pytest.raises(ValidationError, match="table"):
            WebhookSourceSpec(source_id="s", table=bad)
    assert WebhookSourceSpec(source_id="s", table="invoice_events").table == "invoice_events"
