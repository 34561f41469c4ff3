"""The model-repo template: every option combination bakes cleanly; the sklearn repo runs its road offline."""

from __future__ import annotations

import itertools
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from shipway import __version__
from shipway.cli import app as full_app
from shipway.cli.template import CI_SYSTEMS, ROLLOUTS, RUNTIMES, bake, register, shipway_requirement

COMMON = {
    "model.yaml",
    "README.md",
    "Makefile",
    "requirements.txt",
    "requirements-dev.txt",
    "pyproject.toml",
    ".pre-commit-config.yaml",
    ".gitignore",
    "src/fraud_score/__init__.py",
    "src/fraud_score/data.py",
    "src/fraud_score/train.py",
    "src/fraud_score/evaluate.py",
    "src/fraud_score/predict.py",
    "tests/test_model.py",
}
CI_FILES = {"github": {".github/workflows/model.yml", ".github/workflows/retrain.yml"}, "gitlab": {".gitlab-ci.yml"}}
# GitHub expressions (${{ ... }}) are copied unrendered and are not leftovers.
LEFTOVER = re.compile(r"(?<!\$)\{\{|\{%|\{#")


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.parametrize(("runtime", "rollout", "ci"), list(itertools.product(RUNTIMES, ROLLOUTS, CI_SYSTEMS)))
def test_every_combination_bakes_the_exact_file_set_with_nothing_left_unrendered(
    tmp_path: Path, runtime: str, rollout: str, ci: str
) -> None:
    repo = bake(tmp_path, "fraud-score", "risk", runtime=runtime, rollout=rollout, ci=ci)
    assert repo == tmp_path / "fraud-score"
    assert _files(repo) == COMMON | CI_FILES[ci]
    for path in repo.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not LEFTOVER.search(text), f"{path.relative_to(repo)} has unrendered template syntax"
            if path.suffix == ".py":
                py_compile.compile(str(path), doraise=True, cfile=str(tmp_path / "compiled.pyc"))
            if path.suffix == ".yaml" or path.suffix == ".yml":
                assert yaml.safe_load(text)
    spec = yaml.safe_load((repo / "model.yaml").read_text())
    assert (spec["name"], spec["team"]) == ("fraud-score", "risk")
    assert spec["rollout"]["strategy"] == rollout
    assert spec["runtime"] == {"pytorch-triton": "triton", "llm-vllm": "vllm"}.get(runtime, runtime)
    assert spec["artifact"].startswith("oci://") and spec["gate"]["margin"] == 0.02
    # The gate's settings live in model.yaml alone, as the Makefile used to hard-code them.
    slice_column = "topic" if runtime == "llm-vllm" else "size"
    assert spec["gate"] == {"metrics": ["accuracy"], "margin": 0.02, "confidence": 0.95, "slices": [slice_column]}
    assert f'"{slice_column}": ' in (repo / "src/fraud_score/evaluate.py").read_text()
    makefile = (repo / "Makefile").read_text().replace("\\\n", " ")
    [gate] = [line.split() for line in makefile.splitlines() if "$(SHIPWAY) gate" in line]
    assert gate[gate.index("--model") + 1] == "model.yaml"
    assert [gate[gate.index(f"--{role}") + 1] for role in ("labels", "candidate", "baseline")] == \
        ["label", "candidate", "baseline"]
    assert not {"--metric", "--margin", "--confidence", "--slice"} & set(gate)
    # CI installs the Shipway that baked the repo, not whatever an index serves under that name.
    assert f"shipway[model]=={__version__}" in (repo / "requirements-dev.txt").read_text().splitlines()
    # A plain `pytest` finds the code: the repo's pyproject.toml puts src/ on the path.
    pyproject = tomllib.loads((repo / "pyproject.toml").read_text())
    assert pyproject["tool"]["pytest"]["ini_options"]["pythonpath"] == ["src"]
    assert pyproject["project"]["name"] == "fraud-score"


@pytest.mark.parametrize(("given", "requirement"), [
    (None, f"shipway[model]=={__version__}"),
    ("0.2.0", "shipway[model]==0.2.0"),
    (">=0.1,<0.3", "shipway[model]>=0.1,<0.3"),
    ("git+https://github.com/shipway-dev/shipway@v0.1.0",
     "shipway[model] @ git+https://github.com/shipway-dev/shipway@v0.1.0"),
    ("https://example.com/shipway-0.1.0-py3-none-any.whl",
     "shipway[model] @ https://example.com/shipway-0.1.0-py3-none-any.whl"),
])
def test_shipway_spec_chooses_where_the_repo_installs_shipway_from(
        tmp_path: Path, given: str | None, requirement: str) -> None:
    repo = bake(tmp_path, "fraud-score", "risk", shipway_spec=given)
    assert requirement in (repo / "requirements-dev.txt").read_text().splitlines()


def test_shipway_spec_takes_a_checkout_or_a_wheel_and_refuses_anything_else(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "shipway-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    root = Path(__file__).resolve().parents[3]
    assert shipway_requirement(str(root)) == f"shipway[model] @ {root.as_uri()}"
    assert shipway_requirement(wheel.name) == f"shipway[model] @ {wheel.as_uri()}"
    for bad in ("nowhere/at/all", "-e .", "0.1.0 --index-url http://evil", ""):
        result = CliRunner().invoke(full_app, ["new-model", "x", "--team", "t", "--shipway-spec", bad])
        assert result.exit_code == 2 and "--shipway-spec" in result.output, (bad, result.output)
    assert not (tmp_path / "x").exists()


def test_github_workflow_runs_the_road_in_order(tmp_path: Path) -> None:
    workflow = yaml.safe_load((bake(tmp_path, "fraud-score", "risk") / ".github/workflows/model.yml").read_text())
    jobs = workflow["jobs"]
    assert list(jobs) == ["test", "train-evaluate-gate", "push", "promote-staging", "promote-prod"]
    steps = [s.get("name", s.get("run", "")) for s in jobs["train-evaluate-gate"]["steps"]]
    order = ["train", "fetch the production model", "evaluate candidate and production on the holdout", "gate"]
    assert [steps.index(s) for s in order] == sorted(steps.index(s) for s in order)
    assert jobs["promote-prod"]["environment"] == "production"
    # `gh pr comment` writes to the pull request: the job asks for that, and a refused comment fails no gate.
    assert jobs["train-evaluate-gate"]["permissions"]["pull-requests"] == "write"
    [comment] = [s for s in jobs["train-evaluate-gate"]["steps"] if "gh pr comment" in s.get("run", "")]
    assert comment["continue-on-error"] is True
    assert [jobs[j]["needs"] for j in list(jobs)[1:]] == list(jobs)[:-1]


def test_gitlab_pipeline_has_a_manual_production_stage(tmp_path: Path) -> None:
    pipeline = yaml.safe_load((bake(tmp_path, "fraud-score", "risk", ci="gitlab") / ".gitlab-ci.yml").read_text())
    assert pipeline["stages"] == ["test", "train", "evaluate", "gate", "push", "staging", "production"]
    assert pipeline["promote-prod"]["rules"][0]["when"] == "manual"


@pytest.mark.parametrize(
    ("name", "team", "package", "description", "words"),
    [
        ("Fraud_Score", "risk", None, "ok", "not a DNS-1123 label"),
        ("../../escape", "risk", "escape", "ok", "not a DNS-1123 label"),
        ("fraud", "risk/../../x", None, "ok", "not a DNS-1123 label"),
        ("fraud", "risk", "class", "ok", "not a valid Python package name"),
        ("fraud", "risk", "1pkg", "ok", "not a valid Python package name"),
        ("fraud", "risk", None, "{{ cookiecutter.__class__ }}", "--description may hold only"),
        ("fraud", "risk", None, "{% include '/etc/passwd' %}", "--description may hold only"),
        ("fraud", "risk", None, 'x"\nimport os', "--description may hold only"),
        # Valid DNS labels that model.yaml refuses: the baked repo could never be pushed or promoted.
        ("9fraud", "risk", "fraud", "ok", "start with a letter"),
        ("f" * 41, "risk", "fraud", "ok", "at most 40 characters"),
        ("fraud", "2risk", None, "ok", "start with a letter"),
    ],
)
def test_new_model_refuses_unsafe_inputs_with_exit_2(
    tmp_path: Path, name: str, team: str, package: str | None, description: str, words: str
) -> None:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Test app."""

    arguments = ["new-model", name, "--team", team, "--description", description, "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(app, arguments + (["--package", package] if package else []))
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "escape").exists()


def test_plain_cookiecutter_is_refused_by_the_hook_for_a_bad_name(tmp_path: Path) -> None:
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.main import cookiecutter

    from shipway.cli.template import template_dir

    config = tmp_path / "config.yaml"
    config.write_text(f"replay_dir: {tmp_path}/replay\ncookiecutters_dir: {tmp_path}/cc\n")
    with pytest.raises(FailedHookException):
        cookiecutter(
            str(template_dir()),
            no_input=True,
            extra_context={"model_name": "Bad_Name", "description": 'quote " and ; import os'},
            output_dir=str(tmp_path / "out"),
            config_file=str(config),
        )
    assert not (tmp_path / "out" / "bad_name").exists() and not (tmp_path / "out" / "Bad_Name").exists()


@pytest.mark.parametrize("name", ["9fraud", "f" * 41])
def test_plain_cookiecutter_is_refused_by_the_hook_for_a_name_model_yaml_refuses(tmp_path: Path, name: str) -> None:
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.main import cookiecutter

    from shipway.cli.template import template_dir

    config = tmp_path / "config.yaml"
    config.write_text(f"replay_dir: {tmp_path}/replay\ncookiecutters_dir: {tmp_path}/cc\n")
    with pytest.raises(FailedHookException):
        cookiecutter(str(template_dir()), no_input=True, output_dir=str(tmp_path / "out"), config_file=str(config),
                     extra_context={"model_name": name, "package_name": "fraud"})
    assert not (tmp_path / "out" / name).exists()


def test_the_longest_accepted_name_bakes_a_model_yaml_that_loads(tmp_path: Path) -> None:
    from shipway.spec import load_model_spec

    name = "f" * 40
    repo = bake(tmp_path, name, "risk", package="fraud")
    assert load_model_spec(repo / "model.yaml").name == name


def test_new_model_bakes_the_registry_it_is_given_into_model_yaml_and_the_makefile(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        """Test app."""

    registry = "zot.shipway-registry.svc.cluster.local:5000/models"
    arguments = ["new-model", "fraud-score", "--team", "risk", "--registry", registry, "-o", str(tmp_path)]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    repo = tmp_path / "fraud-score"
    assert yaml.safe_load((repo / "model.yaml").read_text())["artifact"] == f"oci://{registry}/risk/fraud-score"
    assert f"ARTIFACT := oci://{registry}/$(TEAM)/$(MODEL)" in (repo / "Makefile").read_text()
    refused = CliRunner().invoke(app, ["new-model", "other", "--team", "risk", "--registry", "Bad Host/{{x}}",
                                       "-o", str(tmp_path)])
    assert refused.exit_code == 2 and "--registry" in refused.output
    assert not (tmp_path / "other").exists()


def test_baking_twice_into_the_same_place_is_refused(tmp_path: Path) -> None:
    bake(tmp_path, "fraud-score", "risk")
    with pytest.raises(Exception, match="already exists"):
        bake(tmp_path, "fraud-score", "risk")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_sklearn_repo_runs_its_tests_train_evaluate_and_gate_offline(tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="scikit-learn (dev extra) is not installed")
    repo = bake(tmp_path, "fraud-score", "risk", runtime="sklearn")
    shim = tmp_path / "shipway_cli.py"
    source = Path(__file__).resolve().parents[3] / "src"
    # The real app of this checkout: `make train` runs `shipway drift profile`, `make gate` `shipway gate`.
    shim.write_text(f"import sys\nsys.path.insert(0, {str(source)!r})\nfrom shipway.cli import app\napp()\n")
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    variables = [f"PYTHON={sys.executable}", f"SHIPWAY={sys.executable} {shim}"]
    for target in ("test", "train", "evaluate", "gate"):
        done = subprocess.run(
            ["make", target, *variables], cwd=repo, env=environment, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"make {target}:\n{done.stdout}\n{done.stderr}"
    manifest = json.loads((repo / "build/candidate/manifest.json").read_text())
    assert manifest["file"] == "model.joblib" and len(manifest["sha256"]) == 64
    report = json.loads((repo / "build/gate/gate-report.json").read_text())
    assert report["passed"] is True and report["overall"]["rows"] == 12_000
    # The template's own data is big enough for its own margin: the first gate is a clean pass.
    assert report["warnings"] == [] and "warning" not in done.stdout + done.stderr
    assert report["overall"]["candidate"] > 0.9
    assert {s["value"] for s in report["slices"]} == {"large", "small"}
    assert (repo / "build/gate/gate-difference.png").stat().st_size > 1000
    # model.yaml's gate section is what `make gate` judged by.
    assert (report["metric"]["name"], report["rule"]["margin"], report["rule"]["confidence"]) == ("accuracy", 0.02, 0.95)

    # A second metric in model.yaml: one report per metric, and a combined one promotion reads.
    model_yaml = repo / "model.yaml"
    model_yaml.write_text(model_yaml.read_text().replace("metrics: [accuracy]", "metrics: [accuracy, f1]"))
    done = subprocess.run(["make", "gate", *variables], cwd=repo, env=environment, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"make gate:\n{done.stdout}\n{done.stderr}"
    combined = json.loads((repo / "build/gate/gate-report.json").read_text())
    assert combined["passed"] is True and [m["name"] for m in combined["metrics"]] == ["accuracy", "f1"]
    for metric in ("accuracy", "f1"):
        assert json.loads((repo / "build/gate" / metric / "gate-report.json").read_text())["rule"]["margin"] == 0.02
    assert "| f1 | PASS |" in (repo / "build/gate/gate-summary.md").read_text()
