"""Helpers of the end-to-end tier: finding a cluster (quickly), kubectl/helm calls, DuckDB queries inside
the code-location pod, and waiting for Dagster run Jobs."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KIND_CLUSTER = "ingestion-patterns"
PROBE_SECONDS = 8  # every "is there a cluster?" probe gives up after this


@dataclass(frozen=True)
class Target:
    """Where the platform runs: the kube context, how it gets there, and where its ingress answers."""

    context: str
    mode: str  # "kind" (created here), "existing" (the kubeconfig's current cluster)
    namespace: str = os.environ.get("E2E_NAMESPACE", "ingestion")
    release: str = os.environ.get("E2E_RELEASE", "ingestion")
    ingress_url: str = os.environ.get("E2E_INGRESS_URL", "http://127.0.0.1:8080")


def kafka_mode() -> str:
    """How the platform under test runs Kafka (E2E_KAFKA): strimzi (default), standalone or off."""
    mode = os.environ.get("E2E_KAFKA", "strimzi")
    if mode not in ("strimzi", "standalone", "off"):
        raise ValueError(f"E2E_KAFKA must be strimzi, standalone or off, not {mode!r}")
    return mode


def _quick(*args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=PROBE_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _first_line(result: subprocess.CompletedProcess[str] | None) -> str:
    if result is None:
        return "timed out"
    text = (result.stderr or result.stdout).strip()
    return text.splitlines()[0] if text else f"exit {result.returncode}"


def find_target() -> tuple[Target | None, str]:
    """(target, "") when a cluster can be had, else (None, the reason). Probes take seconds, not minutes."""
    if os.environ.get("E2E_DISABLE"):
        return None, "E2E_DISABLE is set"
    if shutil.which("kubectl") is None:
        return None, "kubectl is not installed"
    reasons = []
    context = _quick("kubectl", "config", "current-context")
    if context is not None and context.returncode == 0 and context.stdout.strip():
        name = context.stdout.strip()
        reachable = _quick("kubectl", "--context", name, "version", f"--request-timeout={PROBE_SECONDS - 2}s")
        if reachable is not None and reachable.returncode == 0:
            return Target(context=name, mode="existing"), ""
        reasons.append(f"kube context {name!r} is unreachable ({_first_line(reachable)})")
    else:
        reasons.append(f"no kubeconfig context ({_first_line(context)})")
    if shutil.which("kind") is None:
        reasons.append("kind is not installed")
    else:
        docker = _quick("docker", "info", "--format", "{{.ServerVersion}}") if shutil.which("docker") else None
        if docker is None or docker.returncode != 0:
            reasons.append(f"no container engine for kind (docker info: {_first_line(docker)})")
        else:
            return Target(context=f"kind-{KIND_CLUSTER}", mode="kind"), ""
    if local := os.environ.get("E2E_LOCAL_CLUSTER_REASON"):  # set by .ci/test: why k8s/local-cluster is not up
        reasons.append(f"no local cluster: {local}")
    return None, "no Kubernetes cluster can be had: " + "; ".join(reasons)


def sh(*args: str, timeout: float = 600, check: bool = True, input: str | None = None) -> str:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


class Cluster:
    """kubectl and helm bound to one context and namespace."""

    def __init__(self, target: Target, helm: str) -> None:
        self.target = target
        self.helm_bin = helm

    def kubectl(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        return sh(
            "kubectl",
            "--context",
            self.target.context,
            "-n",
            self.target.namespace,
            *args,
            timeout=timeout,
            check=check,
        )

    def helm(self, *args: str, timeout: float = 900) -> str:
        return sh(
            self.helm_bin, "--kube-context", self.target.context, "-n", self.target.namespace, *args, timeout=timeout
        )

    def name(self, suffix: str) -> str:
        return f"{self.target.release}-{suffix}"

    def secret_value(self, secret: str, key: str) -> str:
        data = json.loads(self.kubectl("get", "secret", secret, "-o", "json"))["data"]
        return base64.b64decode(data[key]).decode()

    def python_in(self, deployment: str, script: str, timeout: float = 120) -> str:
        """Run a Python script in a deployment's pod (the images have python, duckdb and the package)."""
        return self.kubectl("exec", f"deploy/{deployment}", "--", "python", "-c", script, timeout=timeout)

    def duckdb_query(self, sql: str) -> list[list]:
        """Rows of a read-only query on the DuckDB file on the volume."""
        return self._read_duckdb(f"print(json.dumps(conn.execute({sql!r}).fetchall(), default=str))\n")

    def table_counts(self) -> dict[str, int]:
        """Rows per table of the ``ingestion`` schema ({} before the first run created the file)."""
        return self._read_duckdb(
            "from ingestion_patterns.warehouse import table_counts\nprint(json.dumps(table_counts(conn)))\n",
            missing="{}",
        )

    def _read_duckdb(self, body: str, missing: str | None = None, deadline_seconds: float = 120):
        """Run ``body`` with ``conn`` open read-only on the volume's DuckDB file, in the code-location pod;
        retried while a run holds the file's lock. ``missing`` is printed instead when there is no file yet."""
        script = "import duckdb, json, os, sys\n"
        if missing is not None:
            script += f"if not os.path.exists(os.environ['DUCKDB_PATH']): print({missing!r}); sys.exit(0)\n"
        script += "conn = duckdb.connect(os.environ['DUCKDB_PATH'], read_only=True)\n" + body
        deadline = time.monotonic() + deadline_seconds
        while True:
            try:
                return json.loads(self.python_in(self.name("user-code"), script).strip().splitlines()[-1])
            except AssertionError as error:
                if "lock" not in str(error).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(3)

    def landed_webhooks(self, source_id: str, event_ids: list[str], timeout: float) -> int:
        """How many of ``event_ids`` are in ingestion.webhook_data under ``source_id``: polled until all are (the
        sensor requests runs until the inbox is drained) or ``timeout`` runs out."""
        ids = ", ".join(f"'{event_id}'" for event_id in event_ids)
        sql = f"SELECT count(*) FROM ingestion.webhook_data WHERE source_id = '{source_id}' AND event_id IN ({ids})"
        deadline = time.monotonic() + timeout
        while True:
            landed = self.duckdb_query(sql)[0][0]
            if landed == len(event_ids) or time.monotonic() > deadline:
                return landed
            time.sleep(2)

    def run_jobs(self, dagster_job: str) -> list[dict]:
        """Kubernetes Jobs the K8sRunLauncher created for one Dagster job."""
        out = self.kubectl("get", "jobs", "-l", f"dagster/job={dagster_job}", "-o", "json")
        return json.loads(out)["items"]

    def wait_for_succeeded_run_job(self, dagster_job: str, after: set[str], timeout: float) -> dict:
        """The first run Job of ``dagster_job`` not in ``after`` that succeeded; fails on a failed one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for job in self.run_jobs(dagster_job):
                if job["metadata"]["name"] in after:
                    continue
                status = job.get("status", {})
                if status.get("succeeded"):
                    return job
                if status.get("failed"):
                    logs = self.kubectl("logs", f"job/{job['metadata']['name']}", "--tail=80", check=False)
                    raise AssertionError(f"run Job {job['metadata']['name']} failed:\n{logs}")
            time.sleep(5)
        raise AssertionError(
            f"no successful run Job of {dagster_job} within {timeout:.0f}s; "
            f"jobs: {[j['metadata']['name'] for j in self.run_jobs(dagster_job)]}"
        )
