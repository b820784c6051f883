"""A source added by `helm upgrade` (docs/kubernetes.md, "Add a source"): a new entry in global.sources.webhooks
with its secret in a Secret created here and named, never inlined; once the receiver and the code server have
rolled, webhooks signed for it land in DuckDB through its own job, and a source no declaration names gets a 404
through the ingress. Runs first (file order) on the release the other modules use, and leaves the source declared.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path

import pytest
from e2e_helpers import REPO, Cluster

from ingestion_devtools.webhook_simulator import send_webhooks

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(3600)]

RUN_TIMEOUT = 900  # sensor tick + queue + pod start + run, on a small kind node
# The daemon reloads its workspace every 60 s (dagster's RELOAD_WORKSPACE_INTERVAL): until then its sensor
# routes the new source as an undeclared one. The ingress also drops the old receiver pods by then.
DAEMON_RELOAD_SECONDS = 70
SOURCE = "partner"
SECRET_ENV = "PARTNER_WEBHOOK_SECRET"
# Exposed at the edge on purpose but declared nowhere: the receiver's own 404, with its reason.
UNDECLARED = "e2e-undeclared"


def declare_partner(cluster: Cluster, secret_name: str, values: Path) -> None:
    """`helm upgrade --reuse-values` with the partner declared, its Secret in the receiver's env, and UNDECLARED
    exposed by the ingress (the default exposes only the declared and signing sources)."""
    current = json.loads(cluster.helm("get", "values", cluster.target.release, "--all", "-o", "json"))
    receiver = current["webhook-receiver"]
    webhooks = [w for w in current["global"]["sources"]["webhooks"] if w["source_id"] != SOURCE]
    webhooks.append({"source_id": SOURCE, "signature": "standard-webhooks", "secret_env": SECRET_ENV})
    declared = [w["source_id"] for w in webhooks]
    public = list(dict.fromkeys([*(receiver["signing"].get("sources") or []), *declared, UNDECLARED]))
    values.write_text(
        json.dumps(
            {
                "global": {"sources": {"webhooks": webhooks}},
                "webhook-receiver": {
                    "envSecrets": list(dict.fromkeys([*(receiver.get("envSecrets") or []), secret_name])),
                    "publicPaths": {"sources": public},
                },
            }
        )
    )
    cluster.helm(
        "upgrade",
        cluster.target.release,
        str(REPO / "charts" / "platform"),
        "--reuse-values",
        "-f",
        str(values),
        "--wait",
        "--timeout",
        "10m",
        timeout=900,
    )


def test_a_source_added_by_helm_upgrade_lands_through_the_ingress(cluster: Cluster, tmp_path: Path) -> None:
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    secret_name = cluster.name("partner-webhook")
    cluster.kubectl("delete", "secret", secret_name, "--ignore-not-found")
    cluster.kubectl("create", "secret", "generic", secret_name, f"--from-literal={SECRET_ENV}={secret}")

    started = time.monotonic()
    declare_partner(cluster, secret_name, tmp_path / "partner.json")
    for deployment in ("webhook-receiver", "user-code"):
        cluster.kubectl("rollout", "status", f"deploy/{cluster.name(deployment)}", "--timeout=600s", timeout=660)
    sources = cluster.kubectl("get", "configmap", cluster.name("sources"), "-o", "jsonpath={.data.sources\\.yaml}")
    assert f"source_id: {SOURCE}" in sources and secret not in sources, sources
    time.sleep(DAEMON_RELOAD_SECONDS)
    rolled = time.monotonic() - started

    url = cluster.target.ingress_url
    # A declared scheme is required: unsigned, the delivery is refused.
    unsigned = asyncio.run(send_webhooks(url, SOURCE, 1, secret=None))
    assert [r.status for r in unsigned.rejected] == [401], unsigned.describe()

    before = {j["metadata"]["name"] for j in cluster.run_jobs(f"{SOURCE}_webhook_job")}
    posted = time.monotonic()
    summary = asyncio.run(send_webhooks(url, SOURCE, 50, secret=secret, concurrency=8))
    assert len(summary.accepted) == 50, summary.describe() + f" {summary.rejected[:3]} {summary.failed[:3]}"

    # Its own job (partner_webhook_job, from the declaration), launched as a Kubernetes Job.
    cluster.wait_for_succeeded_run_job(f"{SOURCE}_webhook_job", after=before, timeout=RUN_TIMEOUT)
    landed = cluster.landed_webhooks(SOURCE, summary.accepted, timeout=RUN_TIMEOUT)
    assert landed == 50
    print(
        f"\ne2e timing: helm upgrade declaring {SOURCE!r} -> rolled {rolled:.0f}s; 50 webhooks POSTed -> all rows "
        f"in DuckDB {time.monotonic() - posted:.0f}s after the POST",
        file=sys.stderr,
    )


def test_an_undeclared_source_gets_404_through_the_ingress(cluster: Cluster) -> None:
    url = cluster.target.ingress_url
    # Routed to the receiver by the ingress (exposed above), refused there with its reason.
    refused = asyncio.run(send_webhooks(url, UNDECLARED, 1))
    assert [(r.status, r.reason) for r in refused.rejected] == [
        (404, f"no webhook source '{UNDECLARED}' is declared here")
    ], refused.describe()
    # Not exposed at all: the edge answers 404 itself.
    unexposed = asyncio.run(send_webhooks(url, "e2e-never-exposed", 1))
    assert [r.status for r in unexposed.rejected] == [404], unexposed.describe()
