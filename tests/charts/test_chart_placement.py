"""The DuckDB volume on a multi-node cluster: a ReadWriteOnce volume is attached to one node, so the code server
and every run pod are pinned to the node that holds it (required pod affinity to one another, or a chosen node),
the code server is updated with Recreate, and run Jobs get a deadline. runK8sConfig reaches every run pod, the
pinning kept. The run pods are built by dagster-k8s's own code from the rendered run launcher config."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
from chart_helpers import KUBE_VERSION, RELEASE, Renderer, construct_run_job, instance_config, one, run

pytestmark = pytest.mark.charts

USER_CODE = f"{RELEASE}-user-code"
CLAIM = f"{RELEASE}-user-code-duckdb"
LABEL = "ingestion-patterns/duckdb-volume"
POD_TERM = {"labelSelector": {"matchLabels": {LABEL: CLAIM}}, "topologyKey": "kubernetes.io/hostname"}


def code_server(objects: list[dict]) -> dict:
    return one(objects, "Deployment", USER_CODE)


def pod_affinity_terms(affinity: dict | None) -> list[dict]:
    return ((affinity or {}).get("podAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution", [])


@pytest.mark.parametrize("profile", ["default", "kind", "production"])
def test_readwriteonce_pins_the_code_server_and_every_run_pod_together(
    render: Renderer, tmp_path: Path, profile: str
) -> None:
    objects = render("platform", profile)
    deployment = code_server(objects)
    pvc = one(objects, "PersistentVolumeClaim", CLAIM)
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    # The code server: Recreate (the old pod lets go of the volume first), the label, the required affinity.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"][LABEL] == CLAIM
    assert pod_affinity_terms(template["spec"]["affinity"]) == [POD_TERM]
    # Every run pod: the same label and the same term, so whichever mounts the volume first, the rest join it.
    job = construct_run_job(objects, tmp_path)
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"][LABEL] == CLAIM
    assert pod_affinity_terms(pod["spec"]["affinity"]) == [POD_TERM]
    assert {v["name"]: v for v in pod["spec"]["volumes"]}["duckdb"]["persistentVolumeClaim"]["claimName"] == CLAIM
    kubernetes_validate.validate(job, KUBE_VERSION, strict=True)


def test_user_code_chart_alone_pins_too(render: Renderer) -> None:
    deployment = one(render("user-code"), "Deployment", USER_CODE)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert pod_affinity_terms(deployment["spec"]["template"]["spec"]["affinity"]) == [POD_TERM]


def test_readwritemany_is_not_pinned(render: Renderer, tmp_path: Path) -> None:
    objects = render("platform", "default", "--set", "user-code.persistence.accessModes={ReadWriteMany}")
    deployment = code_server(objects)
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate"}
    assert LABEL not in deployment["spec"]["template"]["metadata"]["labels"]
    assert "affinity" not in deployment["spec"]["template"]["spec"]
    pod = construct_run_job(objects, tmp_path)["spec"]["template"]
    assert LABEL not in pod["metadata"]["labels"]
    assert not pod["spec"].get("affinity")


def test_pinning_to_a_chosen_node(render: Renderer, tmp_path: Path) -> None:
    objects = render(
        "platform",
        "default",
        "--set",
        "user-code.persistence.pinning.mode=node",
        "--set",
        "user-code.persistence.pinning.node=worker-2",
    )
    expected = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["worker-2"]}]}
                ]
            }
        }
    }
    deployment = code_server(objects)
    assert deployment["spec"]["template"]["spec"]["affinity"] == expected
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert construct_run_job(objects, tmp_path)["spec"]["template"]["spec"]["affinity"] == expected


def test_pinning_none_and_an_explicit_strategy(render: Renderer, tmp_path: Path) -> None:
    objects = render(
        "platform",
        "default",
        "--set",
        "user-code.persistence.pinning.mode=none",
        "--set",
        "user-code.strategy.type=Recreate",
    )
    deployment = code_server(objects)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "affinity" not in deployment["spec"]["template"]["spec"]
    assert not construct_run_job(objects, tmp_path)["spec"]["template"]["spec"].get("affinity")


def test_own_affinity_is_kept_beside_the_pinning(render: Renderer, tmp_path: Path) -> None:
    """user-code.affinity (code server) and runK8sConfig.podSpecConfig.affinity (runs) are merged, not replaced."""
    zone = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}
    objects = render(
        "platform",
        "default",
        "--set-json",
        f'user-code.affinity={{"nodeAffinity":{{"requiredDuringSchedulingIgnoredDuringExecution":'
        f'{{"nodeSelectorTerms":[{{"matchExpressions":[{_json(zone)}]}}]}}}}}}',
        "--set-json",
        'dagster.runLauncher.runK8sConfig.podSpecConfig={"affinity":{"podAntiAffinity":{}},'
        '"tolerations":[{"key":"batch","operator":"Exists","effect":"NoSchedule"}]}',
    )
    affinity = code_server(objects)["spec"]["template"]["spec"]["affinity"]
    assert affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchExpressions": [zone]}
    ]
    assert pod_affinity_terms(affinity) == [POD_TERM]
    pod = construct_run_job(objects, tmp_path)["spec"]["template"]["spec"]
    assert pod_affinity_terms(pod["affinity"]) == [POD_TERM]
    assert pod["tolerations"] == [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}]


def _json(value: object) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize(("profile", "deadline"), [("default", 21600), ("production", 21600)])
def test_run_jobs_have_a_deadline(render: Renderer, tmp_path: Path, profile: str, deadline: int) -> None:
    job = construct_run_job(render("platform", profile), tmp_path)
    assert job["spec"]["activeDeadlineSeconds"] == deadline
    job = construct_run_job(
        render("platform", "default", "--set", "dagster.runLauncher.activeDeadlineSeconds=600"), tmp_path
    )
    assert job["spec"]["activeDeadlineSeconds"] == 600


def test_run_k8s_config_reaches_every_run_pod(render: Renderer, tmp_path: Path) -> None:
    """camelCase keys as in the official chart; lists are appended to the chart's own, scalars override."""
    objects = render(
        "platform",
        "default",
        "--set-json",
        "dagster.runLauncher.runK8sConfig={"
        '"containerConfig":{"env":[{"name":"EXTRA","value":"1"}],'
        '"resources":{"limits":{"memory":"3Gi"}}},'
        '"podSpecConfig":{"nodeSelector":{"pool":"batch"},'
        '"tolerations":[{"key":"batch","operator":"Exists","effect":"NoSchedule"}],'
        '"priorityClassName":"batch"},'
        '"podTemplateSpecMetadata":{"annotations":{"example.com/team":"data"}},'
        '"jobMetadata":{"annotations":{"example.com/kind":"run"}},'
        '"jobSpecConfig":{"ttlSecondsAfterFinished":120}}',
    )
    config = instance_config(objects)["run_launcher"]["config"]["run_k8s_config"]
    # The chart's own keys are snake_case; the user's camelCase ones were folded into them, never duplicated.
    assert set(config["job_spec_config"]) == {"ttl_seconds_after_finished", "backoff_limit", "active_deadline_seconds"}
    job = construct_run_job(objects, tmp_path)
    kubernetes_validate.validate(job, KUBE_VERSION, strict=True)
    assert job["spec"]["ttlSecondsAfterFinished"] == 120
    assert job["metadata"]["annotations"]["example.com/kind"] == "run"
    pod = job["spec"]["template"]
    assert pod["metadata"]["annotations"]["example.com/team"] == "data"
    assert pod["spec"]["nodeSelector"] == {"pool": "batch"}
    assert pod["spec"]["priorityClassName"] == "batch"
    assert pod["spec"]["tolerations"] == [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True  # the chart's own stays
    assert pod_affinity_terms(pod["spec"]["affinity"]) == [POD_TERM]
    container = pod["spec"]["containers"][0]
    assert {"name": "EXTRA", "value": "1"} in container["env"]
    assert container["resources"]["limits"]["memory"] == "3Gi"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "user-code.persistence.pinning.mode=node"], "at '/persistence/pinning/node'"),
        (["--set", "user-code.persistence.pinning.mode=somewhere"], "value must be one of 'auto', 'podAffinity'"),
        (["--set", "user-code.persistence.accessModes={ReadWriteOncePod}"], "value must be one of 'ReadWriteOnce'"),
        (["--set", "dagster.runLauncher.activeDeadlineSeconds=0"], "at '/dagster/runLauncher/activeDeadlineSeconds'"),
        (["--set", "dagster.runLauncher.runK8sConfig.podSpec.x=1"], "additional properties 'podSpec' not allowed"),
    ],
)
def test_placement_values_are_checked(helm: str, charts_dir: Path, args: list[str], message: str) -> None:
    result = run(
        helm, "template", "x", str(charts_dir / "platform"), "--kube-version", KUBE_VERSION, *args, check=False
    )
    assert result.returncode != 0, args
    assert message in result.stderr, result.stderr
