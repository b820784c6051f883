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
STANDALONE_CASES = [
    (chart, f"{profile}+standalone") for chart in ("kafka", "platform") for profile in ("default", "kind")
]
# The optional Apicurio Registry (global.schemaRegistry.enabled), rendered over a profile as "<profile>+registry".
REGISTRY_CASES = [("kafka", "default+registry"), ("platform", "production+registry")]
# Every (chart, profile) that is linted, validated and scanned.
CASES = [(chart, profile) for chart in CHARTS for profile in PROFILES] + STANDALONE_CASES + REGISTRY_CASES
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
    """The values file of a profile (and for "<profile>+standalone" Kafka's mode, for "<profile>+registry" the
    schema registry on), and the Kubernetes version to render for: the one whose schemas the objects are
    validated against (a `go install`ed helm has no built-in version and would assume 1.20)."""
    profile, _, variant = profile.partition("+")
    values = [] if profile == "default" else ["-f", str(CHARTS_DIR / chart / f"values-{profile}.yaml")]
    if variant == "registry":
        values += ["--set", "global.schemaRegistry.enabled=true"]
    elif variant:
        values += ["--set", f"{'kafka.' if chart == 'platform' else ''}mode={variant}"]
    return [*values, "--kube-version", KUBE_VERSION]


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}: " + ", ".join(
        f"{o['kind']}/{o['metadata']['name']}" for o in objects
    )
    return matches[0]


def sources_yaml(objects: list[dict], name: str = f"{RELEASE}-sources") -> dict:
    """The parsed sources.yaml of a declared-sources ConfigMap (the umbrella's by default)."""
    return yaml.safe_load(one(objects, "ConfigMap", name)["data"]["sources.yaml"])


def pod_template(objects: list[dict], deployment: str) -> dict:
    return one(objects, "Deployment", deployment)["spec"]["template"]


def sources_values(tmp_path_factory: pytest.TempPathFactory, sources: dict) -> str:
    """A values file declaring `sources` (global.sources), for -f."""
    path = tmp_path_factory.mktemp("values") / "sources.yaml"
    path.write_text(yaml.safe_dump({"global": {"sources": sources}}))
    return str(path)


def schema_refusal(helm: str, chart: Path, *args: str) -> str:
    """`helm lint --strict` of a chart with these values arguments, which its values schema must refuse: the output."""
    result = run(helm, "lint", "--strict", str(chart), *args, "--kube-version", KUBE_VERSION, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{chart.name} accepted {args}"
    assert "values don't meet the specifications of the schema" in output, output
    return output


def template_refusal(helm: str, chart: Path, *args: str) -> str:
    """`helm template` of a chart with these arguments, which must fail: its error output."""
    result = run(helm, "template", "x", str(chart), "--kube-version", KUBE_VERSION, *args, check=False)
    assert result.returncode != 0, f"{chart.name} rendered with {args}"
    return result.stderr


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


def construct_run_job(objects: list[dict], tmp_path: Path, image: str = "ingestion-patterns/user-code:test") -> dict:
    """The run Job that dagster-k8s's own code builds from a rendering's run_launcher config (as the daemon would),
    as a plain dict. Outside a cluster: a throw-away kubeconfig stands in for the in-cluster one (nothing is
    called)."""
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster_k8s import K8sRunLauncher
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import construct_dagster_k8s_job
    from kubernetes.client import ApiClient

    launcher_config = dict(instance_config(objects)["run_launcher"]["config"])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
            }
        )
    )
    launcher_config.update(load_incluster_config=False, kubeconfig_file=str(kubeconfig))
    launcher = K8sRunLauncher(**launcher_config)
    run = DagsterRun(job_name="process_webhook_data", run_id="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(job_image=image, run_launcher=launcher),
        args=["dagster", "api", "execute_run", "{}"],
        job_name="dagster-run-0f1e2d3c",
        pod_name="dagster-run-0f1e2d3c",
        component="run_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": run.job_name, "dagster/run-id": run.run_id},
    )
    return ApiClient().sanitize_for_serialization(job)
