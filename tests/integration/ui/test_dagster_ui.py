"""The browser checks: headless Chromium (Debian's package) opens `ingest dev`'s UI; it finds the push
assets, and after `ingest demo` (which lands the JSON topic and the Avro payments example too) the whole
asset graph of the three patterns, materialized. Set
INGEST_UPDATE_SCREENSHOTS=1 to refresh docs/images/ (the README shows the whole graph)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ingestion_devtools.processes import ManagedProcess, free_port

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium")
DOCS_IMAGES = Path(__file__).resolve().parents[3] / "docs" / "images"
# Chromium on a closed network: no background traffic, no first-run, no sandbox as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _local_env(tmp_path: Path) -> dict[str, str]:
    return {
        "INGEST_DATA_DIR": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
        "WEBHOOK_INBOX_URL": f"sqlite:///{tmp_path / 'inbox.sqlite3'}",
    }


def _start_dev_ui(tmp_path: Path, *extra: str) -> tuple[str, ManagedProcess]:
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed: run `bash .ci/install-deps` (Debian's chromium package)")
    port = free_port()
    process = ManagedProcess.ingest(
        "ingest-dev",
        "dev",
        "--port",
        str(port),
        *extra,
        "--receiver-port",
        str(free_port()),
        "--api-port",
        str(free_port()),
        "--records",
        "100",
        env=_local_env(tmp_path),
        log_path=tmp_path / "ingest-dev.log",
    ).start()
    process.wait_http(f"http://127.0.0.1:{port}/server_info", timeout=240)
    return f"http://127.0.0.1:{port}", process


@pytest.fixture
def dev_ui(tmp_path):
    url, process = _start_dev_ui(tmp_path, "--no-kafka")
    try:
        yield url, process
    finally:
        process.stop(timeout=30)


def test_dev_ui_shows_the_push_assets_and_one_ctrl_c_stops_everything(dev_ui, tmp_path):
    from playwright.sync_api import sync_playwright

    url, process = dev_ui
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.goto(f"{url}/locations/ingestion_patterns/asset-groups/push", wait_until="domcontentloaded")
        page.get_by_text("process_webhook_data").first.wait_for(timeout=120_000)
        screenshot = tmp_path / "asset-graph.png"
        page.wait_for_timeout(1500)  # let the graph layout settle for the picture
        page.screenshot(path=str(screenshot))
        browser.close()
    assert screenshot.stat().st_size > 10_000  # the README's pictures come from the test below

    # One interrupt stops the UI, the daemon and the services `ingest dev` started.
    import signal

    os.kill(process.proc.pid, signal.SIGINT)
    process.proc.wait(timeout=60)
    leftovers = [
        line
        for line in os.popen("ps -eo pid,args").read().splitlines()
        if str(tmp_path) in line and "ps -eo" not in line
    ]
    assert not leftovers, f"processes left running: {leftovers}"


GROUPS = {
    "push": ("process_webhook_data",),
    "pull": ("extract_source_data", "load_to_storage"),
    "poll": ("poll_kafka_events", "process_kafka_events"),
}


def test_after_the_demo_the_asset_graph_shows_every_pattern_materialized(tmp_path):
    from playwright.sync_api import sync_playwright

    demo = ManagedProcess.ingest(
        "ingest-demo",
        "demo",
        "--webhooks",
        "50",
        "--records",
        "500",
        "--events",
        "200",
        env=_local_env(tmp_path),
        log_path=tmp_path / "ingest-demo.log",
    ).start()
    assert demo.started.wait(timeout=600) == 0, demo.log_tail()
    # Every event the demo produced ended as a row or a reject: the JSON topic and the Avro payments
    # example (its schema in the registry the demo started), each with its share of invalid ones.
    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        counts = dict(
            conn.execute(
                "SELECT 'payments', (SELECT count(*) FROM ingestion.payments) UNION ALL "
                "SELECT 'payments_rejects', (SELECT count(*) FROM ingestion.payments_rejects) UNION ALL "
                "SELECT 'kafka_events', (SELECT count(*) FROM ingestion.kafka_events) UNION ALL "
                "SELECT 'kafka_rejects', (SELECT count(*) FROM ingestion.kafka_rejects)"
            ).fetchall()
        )
    assert counts["payments"] + counts["payments_rejects"] == 200 and counts["payments_rejects"] > 0, counts
    assert counts["kafka_events"] + counts["kafka_rejects"] == 200, counts
    assert "Apicurio Registry at" in (tmp_path / "ingest-demo.log").read_text(), "the demo started its registry"
    # The demo's runs are in the instance the UI reads (same DAGSTER_HOME); the UI starts no runs.
    url, process = _start_dev_ui(tmp_path, "--no-kafka")
    shots = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 700})
            # One graph per pattern (the global lineage collapses groups into boxes).
            for group, assets in GROUPS.items():
                page.goto(f"{url}/locations/ingestion_patterns/asset-groups/{group}", wait_until="domcontentloaded")
                for name in assets:
                    page.get_by_text(name, exact=True).first.wait_for(timeout=120_000)
                page.wait_for_timeout(2000)  # the latest materialization loads after the graph
                assert page.get_by_text("Never materialized").count() == 0, f"{group}: an asset the demo never landed"
                shots[group] = tmp_path / f"asset-graph-{group}.png"
                page.screenshot(path=str(shots[group]))
            browser.close()
    finally:
        process.stop(timeout=30)
    for group, shot in shots.items():
        assert shot.stat().st_size > 10_000, group
        if os.environ.get("INGEST_UPDATE_SCREENSHOTS"):
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shot, DOCS_IMAGES / shot.name)
