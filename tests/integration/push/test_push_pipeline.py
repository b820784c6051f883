"""The push pattern end to end: real receiver (gunicorn), real inbox (SQLite file or PostgreSQL),
the real sensor and asset, a real DuckDB file. Crashes are real SIGKILLs."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import dagster as dg
import duckdb
import pytest

from ingestion_devtools.processes import ManagedProcess, wait_until
from ingestion_patterns.instance import prepare_dagster_home
from ingestion_patterns.push.resource import WebhookInboxResource
from ingestion_patterns.warehouse import DUCKDB_POOL

pytestmark = pytest.mark.integration

JOB = "webhook_ingestion_job"


@dataclass
class Platform:
    """One test's local platform: its DuckDB file, inbox, Dagster instance and definitions."""

    duckdb_path: Path
    inbox_url: str
    home: Path
    env: dict[str, str]

    @property
    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))

    @functools.cached_property
    def definitions(self) -> dg.Definitions:
        from ingestion_patterns.definitions import defs

        return defs()

    def inbox(self) -> WebhookInboxResource:
        return WebhookInboxResource(url=self.inbox_url)

    def tick(self) -> dg.SensorExecutionData:
        definitions = self.definitions
        sensor = definitions.resolve_sensor_def("webhook_pending_sensor")
        with dg.build_sensor_context(
            instance=self.instance, definitions=definitions, resources=definitions.resources
        ) as context:
            return sensor.evaluate_tick(context)

    def run_requested(self) -> list[dg.ExecuteInProcessResult]:
        """One sensor tick, then each run it requests, as the daemon would launch them."""
        definitions, instance = self.definitions, self.instance
        return [
            definitions.resolve_job_def(JOB).execute_in_process(
                run_config=request.run_config, tags=request.tags, instance=instance
            )
            for request in self.tick().run_requests or []
        ]

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.duckdb_path), read_only=True) as conn:
            return conn.execute(sql).fetchall()

    def landed_ids(self, source: str) -> list[str]:
        return [
            row[0] for row in self.query(f"SELECT event_id FROM ingestion.webhook_data WHERE source_id = '{source}'")
        ]


@pytest.fixture
def platform(tmp_path, monkeypatch, inbox_url) -> Platform:
    env = {
        "DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "WEBHOOK_INBOX_URL": inbox_url,
        "INGEST_DATA_DIR": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    home = prepare_dagster_home(tmp_path / "dagster")
    return Platform(duckdb_path=tmp_path / "warehouse.duckdb", inbox_url=inbox_url, home=home, env=env)


def payload(event_id: str, *, valid: bool = True) -> dict:
    if not valid:
        return {"id": event_id, "note": "no timestamp and no data"}
    return {"id": event_id, "timestamp": "2026-01-01T00:00:00Z", "data": {"amount": 1}}


async def post_all(url: str, source: str, payloads: list[dict]) -> list[int]:
    async with aiohttp.ClientSession() as session:

        async def post(body: dict) -> int:
            async with session.post(f"{url}/webhook/{source}", json=body) as response:
                return response.status

        return list(await asyncio.gather(*(post(body) for body in payloads)))


def test_sensor_skips_when_nothing_is_pending(platform):
    evaluation = platform.tick()
    assert not evaluation.run_requests
    assert "no webhook payloads pending" in evaluation.skip_message


def test_sensor_requests_one_run_per_source_keyed_by_inbox_position(platform, start_receiver):
    url = start_receiver(platform.inbox_url, env=platform.env).url
    asyncio.run(post_all(url, "shop", [payload(f"s{i}") for i in range(3)]))
    asyncio.run(post_all(url, "crm", [payload(f"c{i}") for i in range(2)]))
    first = {r.tags["webhook/source_id"]: r.run_key for r in platform.tick().run_requests}
    assert set(first) == {"shop", "crm"}
    again = {r.tags["webhook/source_id"]: r.run_key for r in platform.tick().run_requests}
    assert again == first, "a repeated tick at the same inbox position must request the same runs"
    asyncio.run(post_all(url, "shop", [payload("s-late")]))
    later = {r.tags["webhook/source_id"]: r.run_key for r in platform.tick().run_requests}
    assert later["crm"] == first["crm"] and later["shop"] != first["shop"]


def test_valid_payloads_land_once_and_invalid_ones_are_rejected_with_reasons(platform, start_receiver):
    receiver = start_receiver(platform.inbox_url, env=platform.env)
    url = receiver.url
    try:
        bodies = [payload(f"ok-{i}") for i in range(20)] + [payload(f"bad-{i}", valid=False) for i in range(5)]
        statuses = asyncio.run(post_all(url, "shop", bodies))
        assert statuses.count(202) == 25
        assert asyncio.run(post_all(url, "shop", [payload("ok-0")])) == [200]  # a re-sent id is a duplicate
    finally:
        receiver.stop()

    results = platform.run_requested()
    assert len(results) == 1 and results[0].success
    metadata = results[0].asset_materializations_for_node("process_webhook_data")[0].metadata
    assert (metadata["processed"].value, metadata["rejected"].value, metadata["still_pending"].value) == (20, 5, 0)

    assert sorted(platform.landed_ids("shop")) == sorted(f"ok-{i}" for i in range(20))
    rejects = platform.query("SELECT event_id, reason, raw_body FROM ingestion.webhook_rejects ORDER BY event_id")
    assert [r[0] for r in rejects] == sorted(f"bad-{i}" for i in range(5))
    assert all("missing required field(s): timestamp, data" in r[1] for r in rejects)
    assert json.loads(rejects[0][2])["note"] == "no timestamp and no data"

    # Nothing pending: the sensor skips; a forced rerun lands nothing new.
    assert not platform.tick().run_requests
    rerun = platform.definitions.resolve_job_def(JOB).execute_in_process(
        run_config={"ops": {"process_webhook_data": {"config": {"source_id": "shop"}}}}, instance=platform.instance
    )
    assert rerun.asset_materializations_for_node("process_webhook_data")[0].metadata["processed"].value == 0
    assert len(platform.landed_ids("shop")) == 20


def _fill_inbox(platform: Platform, source: str, count: int) -> list[str]:
    """Put ``count`` valid payloads straight into the inbox (the receiver is tested elsewhere)."""
    from ingestion_patterns.push.inbox import NewWebhook

    ids = [f"{source}-{i}" for i in range(count)]

    async def fill(inbox):
        for start in range(0, count, 500):
            await asyncio.gather(
                *(
                    inbox.put(NewWebhook(source, event_id, json.dumps(payload(event_id)).encode(), {}))
                    for event_id in ids[start : start + 500]
                )
            )

    async def with_inbox():
        async with platform.inbox().open() as inbox:
            await fill(inbox)

    asyncio.run(with_inbox())
    return ids


def _execute_job_process(platform: Platform, source: str, batch_size: int, name: str) -> ManagedProcess:
    config = platform.home / f"{name}.yaml"
    config.write_text(
        json.dumps({"ops": {"process_webhook_data": {"config": {"source_id": source, "batch_size": batch_size}}}})
    )
    return ManagedProcess(
        name,
        [
            sys.executable,
            "-m",
            "dagster",
            "job",
            "execute",
            "-m",
            "ingestion_patterns.definitions",
            "-j",
            JOB,
            "-c",
            str(config),
        ],
        env=platform.env,
        log_path=platform.home / f"{name}.log",
    ).start()


def _pending(platform: Platform, source: str) -> int:
    async def pending():
        async with platform.inbox().open() as inbox:
            return await inbox.pending(source)

    return asyncio.run(pending()).count


def _fail_dead_runs(instance: dg.DagsterInstance) -> None:
    """What the daemon's run monitoring does for a run whose process died: mark it failed and free
    the pool slot it held (no daemon runs in these tests)."""
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        instance.report_run_failed(record.dagster_run, "run worker was killed")
        instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)


def test_run_killed_mid_landing_resumes_with_every_payload_exactly_once(platform):
    ids = _fill_inbox(platform, "bulk", 6000)
    run = _execute_job_process(platform, "bulk", batch_size=200, name="killed-run")
    # Kill -9 once some batches are committed and marked done, but not all.
    wait_until(lambda: _pending(platform, "bulk") < 6000 or not run.running, timeout=180, what="the first batches")
    run.kill()
    left = _pending(platform, "bulk")
    assert 0 < left < 6000, f"the kill must land mid-run (pending after kill: {left})"
    _fail_dead_runs(platform.instance)

    results = platform.run_requested()
    assert results and all(r.success for r in results)
    landed = platform.landed_ids("bulk")
    assert len(landed) == len(set(landed)) == 6000
    assert set(landed) == set(ids)
    assert _pending(platform, "bulk") == 0


def test_overlapping_runs_both_succeed_by_queueing_for_the_duckdb_pool(platform):
    _fill_inbox(platform, "alpha", 6000)
    _fill_inbox(platform, "beta", 4000)
    # The second run starts while the first holds the duckdb slot. Not in the same instant: Dagster's SQLite
    # storage claims slots without row locks, so two steps claiming together can both get the one slot
    # (PostgreSQL, the cluster's storage, uses FOR UPDATE SKIP LOCKED). DuckDB's own file lock and the
    # resource's connect retries still keep the writes apart then (docs/architecture.md). The first run
    # lands in small batches (300 transactions), so it is still landing when the second process has
    # started, however fast one landing is (with 40 batches, a fresh-clone run saw it finish 20 ms early).
    runs = [_execute_job_process(platform, "alpha", batch_size=20, name="run-alpha")]
    storage = platform.instance.event_log_storage
    wait_until(
        lambda: storage.get_concurrency_info(DUCKDB_POOL).claimed_slots or not runs[0].running,
        timeout=120,
        what="the first run's duckdb slot",
        interval=0.02,
    )
    runs.append(_execute_job_process(platform, "beta", batch_size=100, name="run-beta"))
    for run in runs:
        run.proc.wait(timeout=300)
    for run in runs:
        assert run.proc.returncode == 0, run.log_tail()
    assert (len(platform.landed_ids("alpha")), len(platform.landed_ids("beta"))) == (6000, 4000)

    # The runs overlapped in time, while their DuckDB steps did not: the pool serialised them.
    instance = platform.instance
    windows, blocked = [], []
    for record in instance.get_run_records():
        events = instance.all_logs(record.dagster_run.run_id)
        blocked += [e for e in events if "blocked by limit for pool duckdb" in (e.message or "")]
        step_start = min(
            e.timestamp for e in events if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"
        )
        step_end = max(
            e.timestamp for e in events if e.dagster_event and e.dagster_event.event_type_value == "STEP_SUCCESS"
        )
        run_start = min(e.timestamp for e in events)
        windows.append((run_start, step_start, step_end))
    (a_run, a_start, a_end), (b_run, b_start, b_end) = sorted(windows, key=lambda w: w[1])
    assert b_run < a_end, "the second run must start while the first is still landing"
    assert b_start >= a_end, "the second run's DuckDB step must wait for the first one's slot"
    assert blocked, "Dagster must report the waiting step as blocked by the duckdb pool"


def test_receiver_killed_under_32_concurrent_senders_loses_no_acknowledged_webhook(platform, start_receiver):
    receiver = start_receiver(platform.inbox_url, env=platform.env)
    url = receiver.url
    acknowledged: dict[str, float] = {}  # event id -> when its 202 arrived
    attempted: set[str] = set()
    restarted_at: list[float] = []
    give_up_at = time.monotonic() + 90

    def sending() -> bool:  # until 2 s of traffic after the restart
        now = time.monotonic()
        return now < give_up_at and (not restarted_at or now < restarted_at[0] + 2)

    async def sender(session: aiohttp.ClientSession, worker: int) -> None:
        n = 0
        while sending():
            event_id = f"w{worker}-{n}"
            n += 1
            attempted.add(event_id)
            try:
                async with session.post(f"{url}/webhook/crash", json=payload(event_id)) as response:
                    if response.status == 202:
                        acknowledged[event_id] = time.monotonic()
            except (TimeoutError, aiohttp.ClientError):
                await asyncio.sleep(0.05)  # the receiver is down; a real sender retries later

    async def load() -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(sender(session, w) for w in range(32)))

    def crash_and_restart() -> None:
        time.sleep(2)
        receiver.kill()
        time.sleep(0.5)
        receiver.restart()  # same port, same inbox
        restarted_at.append(time.monotonic())

    import threading

    chaos = threading.Thread(target=crash_and_restart)
    chaos.start()
    asyncio.run(load())
    chaos.join()
    receiver.stop()

    after_restart = [t for t in acknowledged.values() if t > restarted_at[0]]
    assert len(acknowledged) - len(after_restart) > 100 and after_restart, (
        "webhooks must have been acknowledged both before the kill and after the restart"
    )
    results = platform.run_requested()
    assert results and all(r.success for r in results)
    landed = platform.landed_ids("crash")
    assert len(landed) == len(set(landed))
    missing = set(acknowledged) - set(landed)
    assert not missing, f"{len(missing)} acknowledged webhooks were lost, e.g. {sorted(missing)[:5]}"
    assert set(landed) <= attempted


def test_a_run_leaves_rows_a_live_lease_holds_and_reports_the_tables(platform):
    """Rows another consumer has claimed stay its own until released; each materialization reports
    ingestion.webhook_data's row count and the rejects table's."""
    from ingestion_patterns.push.inbox import NewWebhook

    bodies = [payload(f"ok-{i}") for i in range(10)] + [payload(f"bad-{i}", valid=False) for i in range(2)]

    async def fill_and_claim() -> list[str]:
        async with platform.inbox().open() as inbox:
            for body in bodies:  # one at a time: seq order is the list's order
                await inbox.put(NewWebhook("meta", body["id"], json.dumps(body).encode(), {}))
            return [r.event_id for r in await inbox.claim("meta", 3, owner="another-consumer")]

    async def release() -> int:
        async with platform.inbox().open() as inbox:
            return await inbox.release("meta", "another-consumer")

    def materialize() -> dict:
        result = platform.definitions.resolve_job_def(JOB).execute_in_process(
            run_config={"ops": {"process_webhook_data": {"config": {"source_id": "meta"}}}}, instance=platform.instance
        )
        assert result.success
        metadata = result.asset_materializations_for_node("process_webhook_data")[0].metadata
        return {key: value.value for key, value in metadata.items()}

    assert asyncio.run(fill_and_claim()) == ["ok-0", "ok-1", "ok-2"]
    first = materialize()
    assert (first["processed"], first["rejected"], first["still_pending"]) == (7, 2, 3)
    assert (first["dagster/row_count"], first["rejects_row_count"]) == (7, 2)
    assert sorted(platform.landed_ids("meta")) == sorted(f"ok-{i}" for i in range(3, 10))

    assert asyncio.run(release()) == 3
    second = materialize()
    assert (second["processed"], second["still_pending"]) == (3, 0)
    assert (second["dagster/row_count"], second["rejects_row_count"]) == (10, 2)

    spec = platform.definitions.resolve_assets_def("process_webhook_data").specs_by_key[
        dg.AssetKey("process_webhook_data")
    ]
    assert spec.metadata["dagster/table_name"] == "ingestion.webhook_data"
    landed_columns = [row[0] for row in platform.query("DESCRIBE ingestion.webhook_data")]
    assert [c.name for c in spec.metadata["dagster/column_schema"].columns] == landed_columns
