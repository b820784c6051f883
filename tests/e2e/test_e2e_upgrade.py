"""A `helm upgrade` of the running release: the pre-upgrade hook runs `dagster instance migrate`, and the
upgrade keeps the data on the PersistentVolume and every generated credential (no `lookup` regeneration).
Runs after the other e2e modules (file order), on the release they used."""

from __future__ import annotations

import json
import sys

import pytest
from e2e_helpers import REPO, Cluster

pytestmark = pytest.mark.e2e

# Secrets the release generated once (secret-init hook) whose values must survive an upgrade.
KEPT_SECRETS = (("postgresql", "postgresql-password"), ("inbox", "WEBHOOK_INBOX_URL"))


def test_helm_upgrade_migrates_the_instance_and_keeps_data_and_passwords(cluster: Cluster) -> None:
    before_counts = cluster.table_counts()
    before_secrets = {(s, k): cluster.secret_value(cluster.name(s), k) for s, k in KEPT_SECRETS}
    revision = json.loads(cluster.helm("status", cluster.target.release, "-o", "json"))["version"]

    cluster.helm(
        "upgrade",
        cluster.target.release,
        str(REPO / "charts" / "platform"),
        "--reuse-values",
        "--wait",
        "--timeout",
        "10m",
        timeout=900,
    )

    status = json.loads(cluster.helm("status", cluster.target.release, "-o", "json"))
    assert status["version"] == revision + 1 and status["info"]["status"] == "deployed"
    migrate = json.loads(cluster.kubectl("get", "job", cluster.name("dagster-migrate"), "-o", "json"))
    assert migrate["status"].get("succeeded") == 1, migrate["status"]
    log = cluster.kubectl("logs", f"job/{cluster.name('dagster-migrate')}")
    assert "does not resolve" not in log, "the hook ran against the live PostgreSQL"
    assert {(s, k): cluster.secret_value(cluster.name(s), k) for s, k in KEPT_SECRETS} == before_secrets
    assert cluster.table_counts() == before_counts
    print(f"\ne2e timing: helm upgrade to revision {status['version']} kept {before_counts}", file=sys.stderr)
