"""Fixtures of the chart tier: the helm and kubeconform binaries, the charts with their dependencies built,
and a cached renderer. Tools come from `.ci/install-chart-tools.sh`; nothing here needs a cluster.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHARTS, CHARTS_DIR, INSTALL_HINT, NAMESPACE, RELEASE, Renderer, find_tool, run, values_args


def _required_tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def helm() -> str:
    return _required_tool("helm")


@pytest.fixture(scope="session")
def kubeconform() -> str:
    return _required_tool("kubeconform")


@pytest.fixture(scope="session")
def charts_dir(helm: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of charts/ with every chart's file:// dependencies built (offline) into its charts/: the
    ingestion-common library for each chart, then the umbrella's subcharts (packaged with their library)."""
    copy = tmp_path_factory.mktemp("charts") / "charts"
    shutil.copytree(CHARTS_DIR, copy, ignore=shutil.ignore_patterns("*.tgz", "__pycache__"))
    for chart in CHARTS:  # the umbrella comes last
        run(helm, "dependency", "build", str(copy / chart))
    return copy


@pytest.fixture(scope="session")
def render(helm: str, charts_dir: Path) -> Renderer:
    """render(chart, profile, *extra_helm_args) -> the rendered objects (cached per arguments)."""

    @functools.cache
    def _render(chart: str, profile: str = "default", *extra: str) -> tuple[dict, ...]:
        out = run(
            helm,
            "template",
            RELEASE,
            str(charts_dir / chart),
            "--namespace",
            NAMESPACE,
            *values_args(chart, profile),
            *extra,
        ).stdout
        return tuple(doc for doc in yaml.safe_load_all(out) if doc)

    def render_(chart: str, profile: str = "default", *extra: str) -> list[dict]:
        # Deep copies: tests may not change each other's view of a cached rendering.
        return json.loads(json.dumps(_render(chart, profile, *extra)))

    return render_
