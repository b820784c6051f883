"""values.schema.json is generated from typed models (charts/schema, pydantic): the committed schemas are the
generated ones, and helm refuses wrong values of every kind the models constrain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from chart_helpers import CHARTS, KUBE_VERSION, REPO, run

pytestmark = pytest.mark.charts

# (chart, helm arguments, what helm says). Unknown top-level keys, the Kafka mode, standalone's single node
# and the DuckDB pool are checked by test_chart_render, test_chart_kafka_standalone and test_chart_dagster.
REFUSED = [
    ("user-code", ["--set", "image.pullPolicy=Sometimes"], "value must be one of 'Always', 'IfNotPresent', 'Never'"),
    ("user-code", ["--set", "env.duckdb_path=/x"], "invalid propertyName 'duckdb_path'"),
    ("user-code", ["--set", "codeServer.port=70000"], "at '/codeServer/port': maximum"),
    ("user-code", ["--set", "codeServer.module=null"], "at '/codeServer': missing property 'module'"),
    ("user-code", ["--set-string", "replicaCount=three"], "at '/replicaCount': got string, want integer"),
    ("webhook-receiver", ["--set", "signing.sources[0]=bad source"], "'bad source' does not match pattern"),
    ("webhook-receiver", ["--set", "inbox.url=mysql://x"], "'mysql://x' does not match pattern"),
    ("webhook-receiver", ["--set", "image.tagg=1"], "at '/image': additional properties 'tagg' not allowed"),
    ("mock-api", ["--set", "replicaCount=2"], "at '/replicaCount': maximum: got 2, want 1"),
    ("mock-api", ["--set", "faults.fault5xxRatio=2"], "at '/faults/fault5xxRatio': maximum"),
    ("kafka", ["--set", "topic.name=no spaces"], "'no spaces' does not match pattern"),
    ("kafka", ["--set", "listeners.nodePort.bootstrapNodePort=8080"], "bootstrapNodePort': minimum"),
    ("platform", ["--set", "user-code.enabled=false"], "at '/user-code/enabled': value must be true"),
    ("platform", ["--set", "postgresql.auth.database=Dagster"], "'Dagster' does not match pattern"),
    # The library chart's key holds helm's globals only.
    ("platform", ["--set", "ingestion-common.x=1"], "at '/ingestion-common': additional properties 'x' not allowed"),
    # The umbrella hands its subcharts' values to their own schemas.
    ("platform", ["--set", "user-code.env.bad-name=1"], "invalid propertyName 'bad-name'"),
    # Helm's globals: imagePullSecrets is typed, the rest stays open.
    ("platform", ["--set", "global.imagePullSecrets[0]=regcred"], "at '/global/imagePullSecrets/0': got string"),
    ("webhook-receiver", ["--set", "global.imagePullSecrets=regcred"], "at '/global/imagePullSecrets': got string"),
]


@pytest.mark.parametrize("chart", CHARTS)
def test_committed_schema_is_the_generated_one(chart: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "charts.schema", "--check", chart], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (
        f"charts/{chart}/values.schema.json is not what charts/schema generates: run "
        f"`uv run python -m charts.schema`\n{result.stdout}{result.stderr}"
    )


@pytest.mark.parametrize(("chart", "args", "message"), REFUSED, ids=[f"{c}:{a[-1]}" for c, a, _ in REFUSED])
def test_schema_refuses_wrong_values(helm: str, charts_dir: Path, chart: str, args: list[str], message: str) -> None:
    result = run(helm, "template", "x", str(charts_dir / chart), "--kube-version", KUBE_VERSION, *args, check=False)
    assert result.returncode != 0, f"{chart} accepted {args}"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr, result.stderr
