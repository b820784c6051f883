"""Alerting against a real HTTP endpoint in a process of its own (tests/integration/alert_receiver.py,
standing in for a Slack incoming webhook): the real sensors of the code location, ticked on a real
Dagster instance after real runs, post once per failed run, failed check or stuck source."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from ingestion_devtools.processes import ManagedProcess, free_port
from ingestion_patterns.definitions import build_definitions
from ingestion_patterns.instance import prepare_dagster_home
from ingestion_patterns.push.inbox import NewWebhook, open_inbox
from ingestion_patterns.settings import load_settings

pytestmark = pytest.mark.integration

RECEIVER_SCRIPT = Path(__file__).parents[1] / "alert_receiver.py"
UI = "http://dagster.example:3000"


@dataclass
class AlertEndpoint:
    url: str
    record: Path
    process: ManagedProcess

    def entries(self) -> list[dict]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    def texts(self) -> list[str]:
        """The ``text`` of every POST it took (not the refused ones)."""
        return [json.loads(e["body"])["text"] for e in self.entries() if not e.get("refused")]


def start_endpoint(tmp_path: Path, *extra: str) -> AlertEndpoint:
    port = free_port()
    record = tmp_path / f"alerts-{port}.jsonl"
    process = ManagedProcess(
        "alert-receiver",
        [sys.executable, str(RECEIVER_SCRIPT), str(port), str(record), *extra],
        log_path=tmp_path / f"alert-receiver-{port}.log",
    ).start()
    base = f"http://127.0.0.1:{port}"
    process.wait_http(f"{base}/health", timeout=30)
    return AlertEndpoint(url=f"{base}/services/T000/B000/secret", record=record, process=process)


@pytest.fixture
def endpoint(tmp_path) -> Iterator[AlertEndpoint]:
    alerts = start_endpoint(tmp_path)
    yield alerts
    alerts.process.stop()


class Platform:
    """The code location's definitions for these settings, on a Dagster instance in tmp."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *, run_retries: bool):
        self.settings = load_settings(
            {"DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"), "INGEST_DATA_DIR": str(tmp_path), **env}
        )
        self.definitions = build_definitions(self.settings)
        if run_retries:  # the project's dagster.yaml: the daemon retries failed runs
            home = prepare_dagster_home(tmp_path / "dagster")
        else:
            home = tmp_path / "dagster"
            home.mkdir()
            (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        self.instance = dg.DagsterInstance.from_config(str(home))
        self.cursors: dict[str, str | None] = {}

    def tick(self, sensor_name: str) -> dg.SensorExecutionData:
        """One evaluation of ``sensor_name``, carrying its cursor on from the previous one, as the daemon does."""
        sensor = self.definitions.resolve_sensor_def(sensor_name)
        with dg.build_sensor_context(
            instance=self.instance,
            definitions=self.definitions,
            resources=self.definitions.resources,
            cursor=self.cursors.get(sensor_name),
        ) as context:
            result = sensor.evaluate_tick(context)
        self.cursors[sensor_name] = result.cursor
        return result

    def land_webhooks(self, source: str, **tags: str) -> dg.ExecuteInProcessResult:
        job = self.definitions.resolve_job_def("webhook_ingestion_job")
        return job.execute_in_process(
            run_config={"ops": {"process_webhook_data": {"config": {"source_id": source}}}},
            instance=self.instance,
            tags={"webhook/source_id": source, **tags},
            raise_on_error=False,
        )


UNREACHABLE_INBOX = f"postgresql://nobody:pw@127.0.0.1:{free_port()}/inbox"  # nothing listens: refused at once


def test_a_failed_run_is_posted_once_with_job_source_error_and_a_link(tmp_path, endpoint):
    platform = Platform(
        tmp_path,
        {"WEBHOOK_INBOX_URL": UNREACHABLE_INBOX, "ALERT_WEBHOOK_URL": endpoint.url, "DAGSTER_UI_URL": UI},
        run_retries=False,
    )
    platform.tick("run_failure_alert")  # the first tick only places the cursor, as in the daemon
    failed = platform.land_webhooks("shop")
    assert not failed.success

    platform.tick("run_failure_alert")
    [text] = endpoint.texts()
    [entry] = endpoint.entries()
    assert entry["path"] == "/services/T000/B000/secret" and entry["content_type"] == "application/json"
    assert list(json.loads(entry["body"])) == ["text"], "a Slack incoming webhook body: {'text': ...}"
    lines = text.splitlines()
    assert lines[0] == "🔴 Run failed: webhook_ingestion_job (webhook source shop)"
    assert lines[1].startswith("Error: process_webhook_data: ") and "PostgreSQL inbox" in lines[1]
    assert lines[-1] == f"Run: {UI}/runs/{failed.run_id}"

    platform.tick("run_failure_alert")
    platform.tick("run_failure_alert")
    assert len(endpoint.texts()) == 1, "the same failure is never posted twice"


def test_a_run_the_daemon_will_retry_waits_for_its_last_attempt(tmp_path, endpoint):
    platform = Platform(
        tmp_path, {"WEBHOOK_INBOX_URL": UNREACHABLE_INBOX, "ALERT_WEBHOOK_URL": endpoint.url}, run_retries=True
    )
    platform.tick("run_failure_alert")
    retried = platform.land_webhooks("shop")  # the job's tags: dagster/max_retries 3
    final = platform.land_webhooks("crm", **{"dagster/max_retries": "0"})
    assert not retried.success and not final.success
    assert platform.instance.get_run_by_id(retried.run_id).tags["dagster/will_retry"] == "true"

    platform.tick("run_failure_alert")
    [text] = endpoint.texts()
    assert text.startswith("🔴 Run failed: webhook_ingestion_job (webhook source crm)")


@dg.asset
def shipments() -> int:
    return 1


@dg.asset_check(asset=shipments, blocking=False)
def shipments_fresh() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False, severity=dg.AssetCheckSeverity.WARN, description="the newest shipment is 3 days old"
    )


@dg.asset
def invoices() -> int:
    return 1


@dg.asset_check(asset=invoices, blocking=True)
def invoices_complete() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="column amount is missing")


@dg.asset(deps=[invoices])
def invoice_totals() -> int:
    return 1


def test_failed_asset_checks_are_posted_once(tmp_path, endpoint):
    platform = Platform(tmp_path, {"ALERT_WEBHOOK_URL": endpoint.url, "DAGSTER_UI_URL": UI}, run_retries=False)
    for sensor in ("asset_check_alert", "run_failure_alert"):
        platform.tick(sensor)

    warned = dg.materialize([shipments, shipments_fresh], instance=platform.instance, tags={"kafka/topic": "orders"})
    assert warned.success, "a WARN check does not fail its run"
    blocked = dg.materialize(
        [invoices, invoices_complete, invoice_totals], instance=platform.instance, raise_on_error=False
    )
    assert not blocked.success, "a blocking check that fails stops the run"
    passed = dg.materialize([invoices], instance=platform.instance)
    assert passed.success

    for _ in range(2):
        for sensor in ("asset_check_alert", "run_failure_alert"):
            platform.tick(sensor)

    warning, failure = endpoint.texts()
    assert warning.splitlines() == [
        "⚠️ Asset check failed in __ephemeral_asset_job__ (Kafka topic orders) (the run succeeded)",
        "Failed check: shipments:shipments_fresh (WARN): the newest shipment is 3 days old",
        f"Run: {UI}/runs/{warned.run_id}",
    ]
    assert failure.startswith("🔴 Run failed: __ephemeral_asset_job__\n")
    assert "Failed check: invoices:invoices_complete (ERROR): column amount is missing" in failure
    assert failure.endswith(f"Run: {UI}/runs/{blocked.run_id}")


def _put(url: str, source: str, count: int, age: timedelta) -> None:
    async def put() -> None:
        async with open_inbox(url) as inbox:
            received = (datetime.now(UTC) - age).timestamp()
            for i in range(count):
                await inbox.put(NewWebhook(source, f"{source}-{i}", b"{}", {}, received_at=received))

    asyncio.run(put())


def _land(url: str, source: str) -> None:
    async def land() -> None:
        async with open_inbox(url) as inbox:
            records = await inbox.claim(source, 100)
            await inbox.mark_done(source, [r.seq for r in records])

    asyncio.run(land())


def test_a_stuck_webhook_source_is_posted_once_and_again_when_it_moves(tmp_path):
    # The endpoint refuses its first three POSTs: the first alert's three attempts all fail.
    endpoint = start_endpoint(tmp_path, "--fail-first", "3")
    try:
        inbox = f"sqlite:///{tmp_path / 'inbox.sqlite3'}"
        platform = Platform(
            tmp_path,
            {"WEBHOOK_INBOX_URL": inbox, "ALERT_WEBHOOK_URL": endpoint.url, "ALERT_STUCK_AFTER": "1h"},
            run_retries=False,
        )
        _put(inbox, "shop", 3, timedelta(hours=2))
        _put(inbox, "crm", 2, timedelta(minutes=5))

        unsent = platform.tick("stuck_source_alert")
        assert endpoint.texts() == [] and len(endpoint.entries()) == 3
        assert "trying again next tick" in (unsent.skip_message or "")
        platform.tick("stuck_source_alert")  # the next tick sends what the last could not
        [stuck] = endpoint.texts()
        assert stuck.startswith("⏳ Webhook source shop is stuck: 3 payloads pending, the oldest received 2h 0")
        assert "(limit 1h 00m)" in stuck

        platform.tick("stuck_source_alert")
        assert len(endpoint.texts()) == 1, "still stuck: not posted again"

        _land(inbox, "shop")
        platform.tick("stuck_source_alert")
        platform.tick("stuck_source_alert")
        assert endpoint.texts()[1:] == ["✅ Webhook source shop is moving again: nothing pending."]
    finally:
        endpoint.process.stop()


def test_without_an_alert_url_the_sensors_read_nothing_and_send_nothing(tmp_path):
    platform = Platform(tmp_path, {"WEBHOOK_INBOX_URL": UNREACHABLE_INBOX}, run_retries=False)
    result = platform.tick("stuck_source_alert")
    assert result.skip_message == "ALERT_WEBHOOK_URL is not set: alerting is off"
    platform.tick("run_failure_alert")
    assert not platform.land_webhooks("shop").success
    platform.tick("run_failure_alert")  # nothing to post to, and no error
