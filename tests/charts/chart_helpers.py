"""Helpers of the chart tier: render the Helm charts with the real helm binary and check what comes out.

Tools come from `.ci/install-chart-tools.sh` (helm, kubeconform from the Go module proxy; skaffold's schema
and Strimzi's CRDs into the same cache). Nothing here needs a cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHARTS_DIR = REPO / "charts"
# The umbrella (platform) last: its dependencies are built after the subcharts' own.
CHARTS = ["webhook-receiver", "mock-api", "user-code", "kafka", "platform"]
# The library chart holding the helpers every chart shares (renders nothing itself).
LIBRARY_CHART = "ingestion-common"
PROFILES = ["default", "kind", "production"]
# Kafka's standalone mode (one KRaft StatefulSet, no Strimzi operator) rendered over a values profile, as
# "<profile>+standalone". Production's three-node values do not fit a single node (the schema refuses them).
STANDALONE_CASES = [(chart, f"{profile}+standalone") for chart in ("kafka", "platform") for profile in ("default", "kind")]
# Every (chart, profile) that is linted, validated and scanned.
CASES = [(chart, profile) for chart in CHARTS for profile in PROFILES] + STANDALONE_CASES
RELEASE = "ip"
NAMESPACE = "ingestion"
TOOLS_DIR = Path(os.environ.get("INGESTION_TOOLS_DIR", Path.home() / ".cache" / "ingestion-patterns"))
Renderer = Callable[..., list[dict]]
# Render for (and validate against) the newest Kubernetes whose schemas kubernetes-validate bundles.
KUBE_VERSION = kubernetes_validate.latest_version()
INSTALL_HINT = "run `bash .ci/install-chart-tools.sh` (go install from the Go module proxy)"


def find_tool(name: str) -> str | None:
    """A tool on PATH, in the tools cache, or in $(go env GOPATH)/bin."""
    if found := shutil.which(name):
        return found
    candidates = [TOOLS_DIR / "bin" / name, Path.home() / "go" / "bin" / name]
    if gopath := os.environ.get("GOPATH"):
        candidates.insert(1, Path(gopath) / "bin" / name)
    return next((str(c) for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def run(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd, timeout=300)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}", pytrace=False)
    return result


def values_args(chart: str, profile: str) -> list[str]:
    """The values file of a profile (and Kafka's mode for "<profile>+<mode>"), and the Kubernetes version to
    render for: the one whose schemas the objects are validated against (a `go install`ed helm has no
    built-in version and would assume 1.20)."""
    profile, _, kafka_mode = profile.partition("+")
    values = [] if profile == "default" else ["-f", str(CHARTS_DIR / chart / f"values-{profile}.yaml")]
    if kafka_mode:
        values += ["--set", f"{'kafka.' if chart == 'platform' else ''}mode={kafka_mode}"]
    return [*values, "--kube-version", KUBE_VERSION]


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}: " + ", ".join(
        f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    return matches[0]


def pod_spec(obj: dict) -> dict | None:
    """The pod spec of a workload (Deployment, StatefulSet, Job, Pod), else None."""
    kind = obj["kind"]
    if kind == "Pod":
        return obj["spec"]
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        return obj["spec"]["template"]["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def instance_config(objects: list[dict]) -> dict:
    """The parsed dagster.yaml of the platform's instance ConfigMap."""
    cm = one(objects, "ConfigMap", f"{RELEASE}-dagster-instance")
    return yaml.safe_load(cm["data"]["dagster.yaml"])
