"""Bad records on the push path, end to end: the receiver (gunicorn) refuses what is not interchange
JSON with a 400; what the inbox (a real SQLite file) holds from before that rule lands as a reject,
beside the good payloads, and the batch is done. The lone surrogate, 1e999, NaN and NUL cases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource
from webhook_http import post_json

from ingestion_patterns.push.assets import build_webhook_source
from ingestion_patterns.push.inbox import NewWebhook, open_inbox
from ingestion_patterns.push.resource import WebhookInboxResource
from ingestion_patterns.push.source import WebhookSourceSpec

pytestmark = pytest.mark.integration

CASES = {  # event id -> the payload's "data" value, as JSON text
    "lone-surrogate": '"\\ud800"',
    "too-big": "1e999",
    "nan": "NaN",
    "nul": '"a\\u0000b"',
}


def _body(data: str) -> bytes:
    return ('{"timestamp": "2026-01-01T00:00:00Z", "data": ' + data + "}").encode()


def _land(database: Path, inbox_url: str, source: str) -> dg.ExecuteInProcessResult:
    # The shipped instance's asset: it also lands undeclared sources (as the demo's do).
    process_webhook_data, _ = build_webhook_source(
        WebhookSourceSpec(source_id="test-source"),
        asset_name="process_webhook_data",
        job_name="webhook_ingestion_job",
        lands_undeclared=True,
    )
    return dg.materialize(
        [process_webhook_data],
        resources={
            "duckdb": DuckDBResource(database=str(database)),
            "webhook_inbox": WebhookInboxResource(url=inbox_url),
        },
        run_config={"ops": {"process_webhook_data": {"config": {"source_id": source, "batch_size": 100}}}},
    )


def _outcome(database: Path) -> dict[str, tuple[str, str]]:
    with duckdb.connect(str(database), read_only=True) as conn:
        rows = conn.execute("SELECT event_id, 'row', payload::VARCHAR FROM ingestion.webhook_data").fetchall()
        rejects = conn.execute("SELECT event_id, 'reject', reason FROM ingestion.webhook_rejects").fetchall()
    return {event_id: (kind, text) for event_id, kind, text in rows + rejects}


def test_payloads_the_inbox_accepted_before_the_edge_rule_land_or_are_rejected_and_the_batch_is_done(tmp_path):
    inbox_url = f"sqlite:///{tmp_path / 'inbox.sqlite3'}"
    database = tmp_path / "warehouse.duckdb"
    bodies = {"good-1": _body("1"), **{event_id: _body(data) for event_id, data in CASES.items()}, "good-2": _body("2")}

    async def fill() -> None:
        async with open_inbox(inbox_url) as inbox:
            for event_id, body in bodies.items():  # in this order: the bad ones sit between good ones
                await inbox.put(NewWebhook("shop", event_id, body, {"x-github-event": "push"}))

    asyncio.run(fill())
    result = _land(database, inbox_url, "shop")
    assert result.success
    metadata = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
    assert (metadata["processed"], metadata["rejected"], metadata["still_pending"]) == (3, 3, 0)

    outcome = _outcome(database)
    assert outcome["lone-surrogate"][0] == "reject" and "no low surrogate" in outcome["lone-surrogate"][1]
    assert outcome["too-big"][0] == "reject" and "infinity" in outcome["too-big"][1]
    assert outcome["nan"][0] == "reject" and outcome["nan"][1].startswith("malformed JSON")
    assert outcome["nul"] == ("row", '{"timestamp":"2026-01-01T00:00:00Z","data":"a\\u0000b"}')
    assert outcome["good-1"][0] == outcome["good-2"][0] == "row"

    # Done in the inbox: a rerun finds nothing pending and lands nothing again.
    rerun = _land(database, inbox_url, "shop")
    assert rerun.success
    assert rerun.get_asset_materialization_events()[0].materialization.metadata["batches"].value == 0


def test_the_receiver_refuses_them_with_a_400_and_what_it_accepts_lands(tmp_path, start_receiver):
    inbox_url = f"sqlite:///{tmp_path / 'inbox.sqlite3'}"
    database = tmp_path / "warehouse.duckdb"
    receiver = start_receiver(inbox_url)
    try:
        answers = {
            event_id: post_json(f"{receiver.url}/webhook/edge", body=_body(data), headers={"webhook-id": event_id})
            for event_id, data in CASES.items()
        }
    finally:
        receiver.stop()
    assert {event_id: answer.status for event_id, answer in answers.items()} == {
        "lone-surrogate": 400,
        "too-big": 400,
        "nan": 400,
        "nul": 202,
    }
    assert "surrogate" in answers["lone-surrogate"].error_reason()
    assert "infinity" in answers["too-big"].error_reason()

    assert _land(database, inbox_url, "edge").success
    assert _outcome(database) == {"nul": ("row", '{"timestamp":"2026-01-01T00:00:00Z","data":"a\\u0000b"}')}
