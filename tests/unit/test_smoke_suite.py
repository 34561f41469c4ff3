"""`pytest -m smoke` here: every smoke test is collected and skipped, each naming what is missing."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

import shipway

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "tests" / "smoke"
TOOLS = ("docker", "kind", "kubectl", "pulumi")


def smoke_test_names() -> set[str]:
    """Every test function defined in the smoke modules, read from their source."""
    names = set()
    for module in sorted(SMOKE.glob("test_*.py")):
        tree = ast.parse(module.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(f"{module.stem}.{node.name}")
    return names


def expected_tool_reasons() -> dict[str, str]:
    """What the skip reason must say about each tool that does not work here."""
    reasons = {}
    for tool in TOOLS:
        if shutil.which(tool) is None:
            reasons[tool] = f"{tool} (not on PATH)"
        elif tool == "docker":
            info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                                  capture_output=True, text=True, timeout=60)
            if info.returncode != 0 or not info.stdout.strip():
                reasons[tool] = "docker (`docker info` failed"
    return reasons


def run_smoke(tmp_path: Path, **env: str) -> dict[str, ElementTree.Element]:
    """Run `pytest -m smoke tests/smoke` in a subprocess; its test cases by module.function."""
    report = tmp_path / "smoke.xml"
    source = str(Path(shipway.__file__).resolve().parents[1])
    environment = {key: value for key, value in os.environ.items() if not key.startswith("SHIPWAY_SMOKE_")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [source, environment.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "smoke", "tests/smoke", "-p", "no:cacheprovider", "-q",
         f"--junitxml={report}"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**environment, **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    cases = ElementTree.parse(report).getroot().iter("testcase")
    return {f"{case.get('classname', '').rsplit('.', 1)[-1]}.{case.get('name')}": case for case in cases}


def skip_reasons(cases: dict[str, ElementTree.Element]) -> dict[str, str]:
    reasons = {}
    for name, case in cases.items():
        outcomes = [child.tag for child in case]
        assert outcomes == ["skipped"], f"{name} was not skipped: {outcomes}"
        reasons[name] = case[0].get("message", "")
    return reasons


def test_every_smoke_test_is_collected_and_skipped_naming_the_missing_tools(tmp_path: Path) -> None:
    missing = expected_tool_reasons()
    if not missing:
        pytest.skip("docker, kind, kubectl and pulumi all work here: the suite would really run")
    reasons = skip_reasons(run_smoke(tmp_path))
    assert set(reasons) == smoke_test_names()
    for name, reason in reasons.items():
        assert "kind smoke suite needs" in reason, name
        for tool, text in missing.items():
            assert text in reason, f"{name}: {tool} is not named in {reason!r}"
        for tool in set(TOOLS) - set(missing):
            assert f"{tool} (" not in reason, f"{name}: {tool} works here but {reason!r} names it"


def test_once_provisioned_every_smoke_test_skips_naming_the_unreachable_cluster(tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH: the provisioned path skips on kubectl before the cluster")
    empty_kubeconfig = tmp_path / "kubeconfig"
    empty_kubeconfig.write_text("apiVersion: v1\nkind: Config\n", encoding="utf-8")
    reasons = skip_reasons(run_smoke(tmp_path, SHIPWAY_SMOKE_PROVISIONED="1", KUBECONFIG=str(empty_kubeconfig)))
    assert set(reasons) == smoke_test_names()
    for name, reason in reasons.items():
        # The names come from the blueprint, as `shipway cluster-info` gives them to the workflow.
        assert "needs a cluster: kind cluster shipway-dev (context kind-shipway-dev)" in reason, name
