"""End-to-end tier: the platform on a real cluster, driven as a user would.

Cluster: the kubeconfig's current context when it answers, else a kind cluster created here (needs kind and
a container engine). Without either, every e2e test is skipped with the reason, found within seconds.

Deploy (E2E_DEPLOY): "skaffold" (default when skaffold is installed: build, load into kind, helm install),
"make" (k8s/Makefile: docker build, kind load, helm install), or "none" (use the release already there).
Kafka (E2E_KAFKA): "strimzi" (default: the operator's Kafka and KafkaTopic resources must become Ready),
"standalone" (charts/kafka's mode without the operator: its StatefulSet), "off" (installed without Kafka; the
poll test is skipped with that reason).
Other knobs: E2E_NAMESPACE, E2E_RELEASE (default: ingestion), E2E_INGRESS_URL (http://127.0.0.1:8080),
E2E_DISABLE=1 to skip.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator

import pytest
from e2e_helpers import REPO, Cluster, Target, find_target, kafka_mode, sh

sys.path.insert(0, str(REPO / "tests" / "charts"))
from chart_helpers import find_tool


@pytest.fixture(scope="session")
def target() -> Target:
    found, reason = find_target()
    if found is None:
        print(f"\ne2e: SKIPPED: {reason}", file=sys.stderr)
        pytest.skip(reason)
    return found


def deploy(target: Target, helm: str) -> None:
    mode = os.environ.get("E2E_DEPLOY") or ("skaffold" if shutil.which("skaffold") else "make")
    if target.mode == "kind":
        sh("make", "-C", str(REPO / "k8s"), "kind-up", f"NAMESPACE={target.namespace}", timeout=1200)
    if mode == "skaffold":
        sh(
            "skaffold",
            "run",
            "--kube-context",
            target.context,
            "--filename",
            str(REPO / "skaffold.yaml"),
            "--status-check=true",
            timeout=3600,
        )
    elif mode == "make":
        if target.mode != "kind":
            pytest.fail(
                "E2E_DEPLOY=make loads images into kind only: use skaffold (with --default-repo) "
                "or E2E_DEPLOY=none on this cluster",
                pytrace=False,
            )
        sh(
            "make",
            "-C",
            str(REPO / "k8s"),
            "deploy",
            f"NAMESPACE={target.namespace}",
            f"RELEASE={target.release}",
            timeout=3600,
        )
    elif mode != "none":
        pytest.fail(f"unknown E2E_DEPLOY={mode!r}", pytrace=False)


@pytest.fixture(scope="session")
def cluster(target: Target) -> Iterator[Cluster]:
    helm = find_tool("helm")
    if helm is None:
        pytest.fail("helm is not installed: run `bash .ci/install-chart-tools.sh`", pytrace=False)
    deploy(target, helm)
    cluster = Cluster(target, helm)
    release = target.release
    # Ready: every Deployment of the release, PostgreSQL, and the Kafka cluster built by Strimzi.
    cluster.kubectl(
        "wait",
        "--for=condition=Available",
        "deployment",
        "-l",
        f"app.kubernetes.io/instance={release}",
        "--timeout=900s",
        timeout=960,
    )
    cluster.kubectl("rollout", "status", f"statefulset/{release}-postgresql", "--timeout=600s", timeout=660)
    kafka = kafka_mode()
    if kafka == "strimzi":
        cluster.kubectl("wait", f"kafka/{release}-kafka", "--for=condition=Ready", "--timeout=900s", timeout=960)
        cluster.kubectl("wait", "kafkatopic/transactions", "--for=condition=Ready", "--timeout=300s", timeout=360)
    elif kafka == "standalone":  # the topic comes from the chart's post-install Job, done before helm returned
        cluster.kubectl("rollout", "status", f"statefulset/{release}-kafka-kafka", "--timeout=600s", timeout=660)
    started = time.monotonic()
    yield cluster
    print(
        f"\ne2e: platform in {target.context}/{target.namespace} used for {time.monotonic() - started:.0f}s "
        f"(left running{'; `make -C k8s kind-down` removes the kind cluster' if target.mode == 'kind' else ''})",
        file=sys.stderr,
    )
