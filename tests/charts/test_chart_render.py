"""Every chart lints strictly and renders, for each values profile, into objects that validate in strict
mode against the Kubernetes JSON schemas (kubernetes-validate's bundled schemas, offline), checked twice:
by kubernetes-validate itself and by kubeconform on the same schemas."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from chart_helpers import CASES, CHARTS, CHARTS_DIR, PROFILES, Renderer, run, values_args

pytestmark = pytest.mark.charts

# The Kubernetes version whose schemas the objects must satisfy (the newest kubernetes-validate bundles).
K8S_VERSION = kubernetes_validate.latest_version()
# Custom resources: checked against their CRD schemas or field by field in test_chart_strimzi.py and below.
CUSTOM_KINDS = {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "Middleware", "HTTPRoute"}


@pytest.mark.parametrize("chart", CHARTS)
def test_every_values_profile_exists(chart: str) -> None:
    for profile in PROFILES:
        name = "values.yaml" if profile == "default" else f"values-{profile}.yaml"
        assert (CHARTS_DIR / chart / name).is_file(), f"{chart} has no {name}"
    for required in ("values.schema.json", "templates/_helpers.tpl", "templates/NOTES.txt"):
        assert (CHARTS_DIR / chart / required).is_file(), f"{chart} has no {required}"


@pytest.mark.parametrize(("chart", "profile"), CASES)
def test_helm_lint_strict(helm: str, charts_dir: Path, chart: str, profile: str) -> None:
    result = run(helm, "lint", "--strict", str(charts_dir / chart), *values_args(chart, profile))
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("chart", CHARTS)
def test_values_schema_rejects_unknown_keys(helm: str, charts_dir: Path, chart: str) -> None:
    """values.schema.json is enforced: a typo in a values key fails the install instead of being ignored."""
    result = run(
        helm,
        "template",
        "x",
        str(charts_dir / chart),
        "--set",
        "replicaCuont=3",
        "--kube-version",
        K8S_VERSION,
        check=False,
    )
    assert result.returncode != 0
    assert "additional properties 'replicaCuont' not allowed" in result.stderr


@pytest.mark.parametrize(("chart", "profile"), CASES)
def test_rendered_objects_validate_strictly(render: Renderer, chart: str, profile: str) -> None:
    objects = render(chart, profile)
    assert objects, "nothing rendered"
    checked = 0
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {error.message} at {list(error.path)}")
        checked += 1
    assert checked > 0


@pytest.fixture(scope="session")
def standalone_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kubernetes-validate's schemas made standalone (definitions inlined) for kubeconform."""
    source = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"
    target_root = tmp_path_factory.mktemp("kubeconform-schemas")
    target = target_root / f"v{K8S_VERSION}-standalone-strict"
    target.mkdir()
    ref, local_ref = '"/api/_definitions.json#/$defs/', '"#/$defs/'
    definitions = json.loads((source / "_definitions.json").read_text().replace(ref, local_ref))["$defs"]
    for path in source.glob("*.json"):
        if path.name.startswith("_") or "list-" in path.name:
            continue
        schema = json.loads(path.read_text().replace(ref, local_ref))
        if "$defs" in json.dumps(schema):
            schema["$defs"] = definitions
        (target / path.name).write_text(json.dumps(schema))
    return target_root


@pytest.mark.parametrize(("chart", "profile"), CASES)
def test_kubeconform_strict(
    kubeconform: str, render: Renderer, standalone_schemas: Path, tmp_path: Path, chart: str, profile: str
) -> None:
    manifest = tmp_path / "rendered.yaml"
    objects = [o for o in render(chart, profile) if o["kind"] not in CUSTOM_KINDS]
    manifest.write_text(yaml.safe_dump_all(objects))
    location = (
        f"{standalone_schemas}/{{{{.NormalizedKubernetesVersion}}}}-standalone{{{{.StrictSuffix}}}}/"
        "{{.ResourceKind}}{{.KindSuffix}}.json"
    )
    result = run(
        kubeconform,
        "-strict",
        "-summary",
        "-output",
        "json",
        "-kubernetes-version",
        K8S_VERSION,
        "-schema-location",
        location,
        str(manifest),
        check=False,
    )
    report = json.loads(result.stdout)
    problems = [r for r in report["resources"] if r["status"] != "statusValid"]
    assert not problems, problems
    assert report["summary"]["valid"] == len(objects)
