"""Model-repo evidence: a repo baked from the template scores full on the model-side checks; a degraded one does not."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from shipway.readiness import ReadinessInputError, Report, Status, assess, load_repos
from shipway.readiness import repo as repo_evidence
from shipway.readiness.repo import Makefile
from shipway.spec.blueprint import Blueprint

MODEL_SIDE = set(repo_evidence.EVALUATORS)


def _repo_observations(report: Report, name: str) -> dict[str, tuple[Status, str]]:
    return {result.check.id: (obs.status, obs.evidence)
            for result in report.results for obs in result.observations if obs.source == name}


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_a_repo_baked_from_the_template_scores_full_on_the_model_side_checks(
    ci: str, baked_repos: dict[str, Path], kind_dev: Blueprint
) -> None:
    report = assess(kind_dev, "kind-dev", repos=load_repos([baked_repos[ci]]))
    seen = _repo_observations(report, "model-repo:fraud-score")
    assert set(seen) == MODEL_SIDE
    assert {check_id: status for check_id, (status, _) in seen.items()} == dict.fromkeys(MODEL_SIDE, Status.PASS)
    assert "shipway gate build/holdout.parquet" in seen["gates-statistical"][1]
    assert "confidence 0.95" in seen["gates-statistical"][1]
    assert "--production build/production" in seen["gates-holdout"][1]
    assert "oci://registry.example.com/risk/fraud-score" in seen["cicd-versioned-artifacts"][1]
    assert "prod, staging" in seen["gitops-promotion"][1]
    assert "GITOPS_TOKEN" in seen["tenancy-secrets"][1]
    # With the repo, kind-dev's only unknowns are gone: 12 blueprint boxes plus the 6 repo-only ones.
    assert report.count(Status.UNKNOWN) == 0
    assert report.passed == 18


def _degraded_copy(source: Path, destination: Path) -> Path:
    repo = Path(shutil.copytree(source, destination / "fraud-score"))
    model_path = repo / "model.yaml"
    model = yaml.safe_load(model_path.read_text())
    model["rollout"] = {"strategy": "none"}
    del model["accuracy"]
    # Retraining on an accuracy drop needs accuracy monitored; with it gone, drift alone starts retraining.
    model["retrain"]["signals"] = ["drift"]
    model_path.write_text(yaml.safe_dump(model))
    makefile = repo / "Makefile"
    # A gate that is only a coin-flip-free echo, and an evaluate that scores the candidate alone.
    makefile.write_text(makefile.read_text()
                        .replace("\t$(SHIPWAY) gate $(HOLDOUT)", "\techo skipped gate $(HOLDOUT)")
                        .replace("--production build/production ", ""))
    workflow = repo / ".github" / "workflows" / "model.yml"
    workflow.write_text(workflow.read_text().replace("${{ secrets.REGISTRY_PUSH_PASSWORD }}", "hunter2"))
    (repo / "README.md").write_text("# fraud-score\n")
    return repo


def test_a_degraded_repo_fails_the_checks_it_breaks_and_worst_repo_wins(
    baked_repos: dict[str, Path], kind_dev: Blueprint, tmp_path: Path
) -> None:
    degraded = _degraded_copy(baked_repos["github"], tmp_path / "degraded")
    report = assess(kind_dev, "kind-dev", repos=load_repos([baked_repos["gitlab"], degraded]))
    seen = _repo_observations(report, "model-repo:fraud-score")
    # Both repos are named fraud-score; the dict keeps the second, degraded one.
    expected = {
        "gates-statistical": "never runs `shipway gate`",
        "gates-holdout": "no `shipway gate` step",
        "rollouts-progressive": "rollout.strategy is 'none'",
        "observability-model-slos": "no accuracy (its monitoring is off)",
        "tenancy-secrets": "plain values: SHIPWAY_REGISTRY_PASSWORD",
        "selfservice-docs": "does not mention",
    }
    for check_id, reason in expected.items():
        assert seen[check_id][0] is Status.FAIL, check_id
        assert reason in seen[check_id][1], (check_id, seen[check_id][1])
    for check_id in MODEL_SIDE - set(expected):
        assert seen[check_id][0] is Status.PASS, check_id
    statuses = {result.check.id: result for result in report.results}
    assert statuses["gates-statistical"].status is Status.FAIL
    assert len(statuses["gates-statistical"].observations) == 2
    # kind-dev's blueprint passes rollouts; the degraded repo's `none` empties the box.
    assert statuses["rollouts-progressive"].status is Status.FAIL


def test_a_directory_without_model_yaml_or_ci_fails_rather_than_passes(kind_dev: Blueprint, tmp_path: Path) -> None:
    report = assess(kind_dev, "kind-dev", repos=load_repos([tmp_path]))
    seen = _repo_observations(report, f"model-repo:{tmp_path.name}")
    assert {status for status, _ in seen.values()} == {Status.FAIL}
    assert "no model.yaml" in seen["cicd-versioned-artifacts"][1]
    assert "no CI pipeline" in seen["cicd-pipeline"][1]


def test_a_readme_alone_does_not_document_a_road(kind_dev: Blueprint, tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# a model\n\nSome notes.\n")
    seen = _repo_observations(assess(kind_dev, "kind-dev", repos=load_repos([tmp_path])), f"model-repo:{tmp_path.name}")
    assert seen["selfservice-docs"][0] is Status.FAIL
    assert "no CI pipeline" in seen["selfservice-docs"][1]


def test_a_model_repo_path_that_is_not_a_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(ReadinessInputError, match="not a directory"):
        load_repos([tmp_path / "missing"])


def test_the_makefile_reader_follows_targets_and_variables() -> None:
    makefile = Makefile.parse(
        "SHIPWAY ?= shipway\nHOLDOUT := build/h.parquet\n.PHONY: gate all\n"
        "all: gate\n\n"
        "gate:\n\t$(SHIPWAY) gate $(HOLDOUT) \\\n\t\t--confidence 0.9\n"
    )
    resolved = makefile.resolve("make -s all")
    assert "shipway gate build/h.parquet --confidence 0.9" in " ".join(resolved.split())
    assert ".PHONY" not in makefile.recipes


@pytest.mark.parametrize("runtime", ["xgboost", "pytorch-triton", "llm-vllm"])
def test_every_runtime_baked_blue_green_scores_full_except_llm_drift(
    runtime: str, tmp_path: Path, kind_dev: Blueprint
) -> None:
    from shipway.cli.template import bake

    repo = bake(tmp_path, "fraud-score", "risk", runtime=runtime, rollout="blue-green")
    seen = _repo_observations(assess(kind_dev, "kind-dev", repos=load_repos([repo])), "model-repo:fraud-score")
    expected = dict.fromkeys(MODEL_SIDE, Status.PASS)
    if runtime == "llm-vllm":
        # The template's LLM variant has no drift section: PSI profiles are for tabular features.
        expected["observability-model-slos"] = Status.FAIL
        assert "no drift (its monitoring is off)" in seen["observability-model-slos"][1]
    assert {check_id: status for check_id, (status, _) in seen.items()} == expected
    assert "blue-green" in seen["rollouts-progressive"][1]


def test_a_model_yaml_that_fails_modelspec_fails_the_checks_that_read_it(
    baked_repos: dict[str, Path], kind_dev: Blueprint, tmp_path: Path
) -> None:
    repo = Path(shutil.copytree(baked_repos["github"], tmp_path / "fraud-score"))
    model = repo / "model.yaml"
    model.write_text(model.read_text() + "replicaz: 3\n")
    seen = _repo_observations(assess(kind_dev, "kind-dev", repos=load_repos([repo])), "model-repo:fraud-score")
    for check_id in ("cicd-versioned-artifacts", "observability-model-slos", "rollouts-progressive"):
        assert seen[check_id][0] is Status.FAIL, check_id
        assert "model.yaml does not validate" in seen[check_id][1] and "replicaz" in seen[check_id][1]
