"""What the first install on a real cluster (k8s/local-cluster) showed the charts needed."""

from __future__ import annotations

import pytest
from chart_helpers import by_kind, instance_config


@pytest.mark.parametrize("profile", ["default", "kind", "production"])
def test_dagster_storage_uses_the_driver_dagster_postgres_installs(render, profile):
    storages = instance_config(render("platform", profile))
    for name in ("run_storage", "event_log_storage", "schedule_storage"):
        assert storages[name]["config"]["postgres_db"]["scheme"] == "postgresql+psycopg2", name


@pytest.mark.parametrize("profile", ["default", "kind", "production"])
def test_code_server_gets_the_instance_password_from_a_secret(render, profile):
    """Sensors are evaluated in the code server against the PostgreSQL instance."""
    deployments = [
        d for d in by_kind(render("platform", profile), "Deployment") if d["metadata"]["name"].endswith("user-code")
    ]
    assert len(deployments) == 1
    env = {e["name"]: e for e in deployments[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    ref = env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref["key"] == "postgresql-password" and ref["name"].endswith("postgresql")


@pytest.mark.parametrize("chart", ["platform", "webhook-receiver", "mock-api", "user-code", "kafka"])
def test_helm_test_pods_outlive_success_so_their_logs_can_be_read(render, chart):
    hooks = [o for o in render(chart, "default") if "helm.sh/hook" in o["metadata"].get("annotations", {})]
    assert hooks
    for hook in hooks:
        assert "hook-succeeded" not in hook["metadata"]["annotations"].get("helm.sh/hook-delete-policy", "")
