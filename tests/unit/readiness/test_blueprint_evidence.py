"""Expected results per example blueprint, and a deliberately weak blueprint that scores low."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipway.readiness import Status, assess
from shipway.spec import load_blueprint

ROOT = Path(__file__).resolve().parents[3]
WEAK = Path(__file__).resolve().parent / "data" / "weak.yaml"

P, F, U = "pass", "fail", "unknown"
# Model-side checks need a model repo; with a blueprint alone they are unknown, never pass.
REPO_ONLY = {"cicd-pipeline": U, "cicd-versioned-artifacts": U, "gates-statistical": U, "gates-holdout": U,
             "selfservice-scaffold": U, "selfservice-docs": U}
EXPECTED = {
    "kind-dev": {
        **REPO_ONLY,
        "gitops-sync": P, "gitops-promotion": P, "gpu-pools": P, "gpu-device-stack": P,
        "gpu-sharing": F,  # no time-slicing or MIG on the dev pools
        "gpu-quotas": P, "artifacts-registry": P, "artifacts-large-blobs": P, "observability-model-slos": P,
        "observability-alert-routing": F,  # no receivers
        "breakers-analysis": P, "rollouts-progressive": P, "tenancy-namespaces": P,
        "tenancy-rbac": F,  # teams name no groups
        "tenancy-secrets": P,
    },
    "eks-prod": {
        **REPO_ONLY,
        "gitops-sync": P, "gitops-promotion": P, "gpu-pools": P, "gpu-device-stack": P, "gpu-sharing": P,
        "gpu-quotas": P, "artifacts-registry": P, "artifacts-large-blobs": P, "observability-model-slos": P,
        "observability-alert-routing": P, "breakers-analysis": P, "rollouts-progressive": P,
        "tenancy-namespaces": P, "tenancy-rbac": P, "tenancy-secrets": P,
    },
    "gke-prod": {
        **REPO_ONLY,
        "gitops-sync": P, "gitops-promotion": P, "gpu-pools": P, "gpu-device-stack": P, "gpu-sharing": P,
        "gpu-quotas": P, "artifacts-registry": P, "artifacts-large-blobs": P, "observability-model-slos": P,
        "observability-alert-routing": P, "breakers-analysis": P, "rollouts-progressive": P,
        "tenancy-namespaces": P,
        "tenancy-rbac": F,  # team vision names no groups
        "tenancy-secrets": P,
    },
}
EXPECTED_SCORE = {"kind-dev": 12, "eks-prod": 15, "gke-prod": 14}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_example_blueprint_gives_the_expected_result_per_check(name: str) -> None:
    report = assess(load_blueprint(ROOT / "blueprints" / f"{name}.yaml"), name)
    assert {result.check.id: result.status.value for result in report.results} == EXPECTED[name]
    assert report.passed == EXPECTED_SCORE[name]
    assert report.passed >= report.threshold
    assert f"{EXPECTED_SCORE[name]} of 21 boxes checked: past the 8-box line" in report.verdict
    for result in report.results:
        if result.status is not Status.UNKNOWN:
            assert result.source == "blueprint"
            assert result.evidence


def test_examples_name_what_they_saw() -> None:
    report = assess(load_blueprint(ROOT / "blueprints" / "eks-prod.yaml"), "eks-prod")
    evidence = {result.check.id: result.evidence for result in report.results}
    assert "MIG all-1g.10gb" in evidence["gpu-sharing"] and "h100" in evidence["gpu-sharing"]
    assert "2Ti" in evidence["artifacts-registry"]
    assert "64Gi" in evidence["artifacts-large-blobs"]
    assert "5% for 5m, 25% for 10m, 50% for 10m" in evidence["rollouts-progressive"]
    assert "ml-oncall (pagerduty)" in evidence["observability-alert-routing"]
    assert "shipway-model-drift" in evidence["breakers-analysis"]
    assert "fraud 8, llm 56" in evidence["gpu-quotas"]


WEAK_FAILS = {
    "gitops-sync": "gitops.enabled is false",
    "gitops-promotion": "gitops.enabled is false",
    "gpu-pools": "without a NoSchedule taint",
    "gpu-device-stack": "no Prometheus collects",
    "gpu-sharing": "strategy is none",
    "gpu-quotas": "no teams",
    "artifacts-registry": "20Gi",
    "artifacts-large-blobs": "dedupe is off",
    "observability-model-slos": "observability.enabled is false",
    "observability-alert-routing": "observability.enabled is false",
    "breakers-analysis": "serving.rollouts is false",
    "rollouts-progressive": "serving.rollouts is false",
    "tenancy-namespaces": "no teams",
    "tenancy-rbac": "no teams",
}


def test_a_weak_blueprint_scores_low_and_fails_the_right_checks_for_the_right_reasons() -> None:
    report = assess(load_blueprint(WEAK), "weak")
    results = {result.check.id: result for result in report.results}
    failed = {check_id for check_id, result in results.items() if result.status is Status.FAIL}
    assert failed == set(WEAK_FAILS)
    for check_id, reason in WEAK_FAILS.items():
        assert reason in results[check_id].evidence, check_id
    assert report.passed == 1 and results["tenancy-secrets"].status is Status.PASS
    assert report.passed < report.threshold
    assert "below the 8-box line" in report.verdict and "93%" in report.verdict
    scores = {score.category.id: (score.passed, score.total) for score in report.category_scores()}
    assert scores["gitops"] == (0, 2) and scores["circuit-breakers"] == (0, 1) and scores["tenancy"] == (1, 3)
