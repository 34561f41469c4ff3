"""The CI workflows are valid YAML and run the commands the README gives."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_commands() -> tuple[str, str]:
    """The README's first two fenced blocks: the install-and-synth line and the test command."""
    readme = REPO / "README.md"
    assert readme.is_file(), "README.md is missing: it must open with the install and test commands"
    blocks = [block.strip() for block in FENCE.findall(readme.read_text(encoding="utf-8"))]
    assert len(blocks) >= 2, f"README.md needs two fenced commands at the top, found {len(blocks)}"
    install, test = (_command(block) for block in blocks[:2])
    return install, test


def _command(block: str) -> str:
    lines = [line.strip().removeprefix("$ ") for line in block.splitlines() if line.strip()]
    return " ".join(lines)


def load_workflow(name: str) -> dict[str, Any]:
    path = WORKFLOWS / name
    assert path.is_file(), f"{path.relative_to(REPO)} is missing"
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(workflow, dict) and workflow.get("jobs"), f"{name}: no jobs"
    # YAML 1.1 reads the bare key `on` as true.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    assert workflow["on"], f"{name}: no triggers"
    return workflow


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def run_lines(workflow: dict[str, Any]) -> list[str]:
    return [line.strip() for step in steps(workflow) for line in str(step.get("run", "")).splitlines()]


def normalised(command: str) -> list[str]:
    return shlex.split(command)


def runs_command(workflow: dict[str, Any], command: str) -> bool:
    wanted = normalised(command)
    return any(normalised(line) == wanted for line in run_lines(workflow))


def test_ci_runs_the_readmes_install_and_test_commands() -> None:
    install, test = readme_commands()
    ci = load_workflow("ci.yml")
    assert runs_command(ci, install) or runs_command(ci, ".ci/run"), f"ci.yml does not run `{install}`"
    assert runs_command(ci, test) or runs_command(ci, ".ci/run"), f"ci.yml does not run `{test}`"


def test_smoke_workflow_installs_as_the_readme_says_and_runs_the_smoke_marker() -> None:
    install, test = readme_commands()
    smoke = load_workflow("smoke-kind.yml")
    assert runs_command(smoke, install), f"smoke-kind.yml does not run the README's `{install}`"
    test_program = normalised(test.split("&&")[-1])[0]
    pytest_lines = [normalised(line) for line in run_lines(smoke) if line.startswith(test_program)]
    assert any(line[1:3] == ["-m", "smoke"] for line in pytest_lines), pytest_lines


def test_smoke_workflow_steps_follow_the_issue_in_order() -> None:
    smoke = load_workflow("smoke-kind.yml")
    lines = run_lines(smoke)

    def first(predicate: Any, what: str) -> int:
        for index, step in enumerate(steps(smoke)):
            if predicate(step):
                return index
        pytest.fail(f"smoke-kind.yml has no step that {what}")

    kind_config = first(lambda s: "shipway kind-config blueprints/kind-dev.yaml" in str(s.get("run", "")),
                        "generates the kind config")
    cluster = first(lambda s: str(s.get("uses", "")).startswith("helm/kind-action"), "creates the kind cluster")
    assert steps(smoke)[cluster]["with"]["config"].endswith("kind.yaml")
    pulumi_cli = first(lambda s: str(s.get("uses", "")).startswith("pulumi/actions"), "installs the Pulumi CLI")
    login = first(lambda s: 'pulumi login "file://' in str(s.get("run", "")), "logs in to a local file backend")
    up = first(lambda s: "pulumi up --yes -s dev" in str(s.get("run", "")), "runs pulumi up")
    tests = first(lambda s: "pytest -m smoke" in str(s.get("run", "")), "runs the smoke tests")
    collect = first(lambda s: "kubectl get events" in str(s.get("run", "")), "collects events")
    upload = first(lambda s: str(s.get("uses", "")).startswith("actions/upload-artifact"), "uploads artifacts")
    destroy = first(lambda s: "pulumi destroy" in str(s.get("run", "")), "destroys the stack")
    assert kind_config < cluster < up and pulumi_cli < login < up < tests < collect < upload < destroy
    assert steps(smoke)[collect]["if"] == "failure()" and steps(smoke)[upload]["if"] == "failure()"
    assert steps(smoke)[destroy]["if"] == "always()"
    assert any("kubectl logs" in line for line in lines), "pod logs are not collected"
    assert all(job["env"]["PULUMI_CONFIG_PASSPHRASE"] for job in smoke["jobs"].values())


def test_smoke_workflow_has_path_filters_and_a_time_limit() -> None:
    smoke = load_workflow("smoke-kind.yml")
    for event in ("push", "pull_request"):
        paths = smoke["on"][event]["paths"]
        assert "tests/smoke/**" in paths and "src/**" in paths and "blueprints/**" in paths, event
    for name, job in smoke["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 90, name
