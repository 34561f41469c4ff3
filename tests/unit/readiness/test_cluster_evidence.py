"""Live-cluster checks through a fake reader (pass, fail, unreachable), and the real client on a dead address."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from readiness_fakes import FakeCluster
from shipway.readiness import KubeCluster, Report, Status, Workload, assess
from shipway.readiness import cluster as cluster_evidence
from shipway.spec.blueprint import Blueprint

CLUSTER_CHECKS = set(cluster_evidence.EVALUATORS)


def _cluster_observations(report: Report, name: str) -> dict[str, tuple[Status, str]]:
    return {result.check.id: (obs.status, obs.evidence)
            for result in report.results for obs in result.observations if obs.source == f"cluster:{name}"}


def test_a_healthy_cluster_passes_every_live_check_and_names_what_it_saw(
    kind_dev: Blueprint, make_healthy_cluster: Callable[[Blueprint], FakeCluster]
) -> None:
    fake = make_healthy_cluster(kind_dev)
    report = assess(kind_dev, "kind-dev", fake)
    seen = _cluster_observations(report, fake.name)
    assert set(seen) == CLUSTER_CHECKS
    assert {status for status, _ in seen.values()} == {Status.PASS}
    assert "ApplicationSet shipway-models live" in seen["gitops-sync"][1]
    assert "PrometheusRules shipway-platform, shipway-model-slo loaded" in seen["observability-model-slos"][1]
    assert "shipway-model-accuracy" in seen["breakers-analysis"][1]
    assert "3 nvidia.com/gpu" in seen["gpu-pools"][1]
    results = {result.check.id: result for result in report.results}
    assert results["gitops-sync"].source == "blueprint, cluster:kind-healthy"
    assert results["gitops-sync"].status is Status.PASS
    assert report.sources[1].available


def test_a_broken_cluster_fails_the_checks_whose_evidence_is_missing(
    kind_dev: Blueprint, make_healthy_cluster: Callable[[Blueprint], FakeCluster]
) -> None:
    fake = make_healthy_cluster(kind_dev)
    fake.crds.discard("rollouts.argoproj.io")
    fake.workload_map["argocd"] = [Workload("Deployment", "argocd-server", 0, 1)]
    fake.objects[("prometheusrules", "monitoring")].discard("shipway-model-slo")
    fake.objects[("clusteranalysistemplates", None)].discard("shipway-model-drift")
    fake.gpus = {}
    fake.policies["fraud-prod"].discard("default-deny")
    fake.quotas["search-staging"] = []
    report = assess(kind_dev, "kind-dev", fake)
    seen = _cluster_observations(report, fake.name)
    expected_failures = {
        "rollouts-progressive": "CRDs missing: rollouts.argoproj.io",
        "gitops-sync": "Deployment argocd-server 0/1",
        "observability-model-slos": "PrometheusRules missing in monitoring: shipway-model-slo",
        "breakers-analysis": "ClusterAnalysisTemplates missing: shipway-model-drift",
        "gpu-pools": "no node advertises allocatable nvidia.com/gpu",
        "tenancy-namespaces": "fraud-prod has no default-deny NetworkPolicy; search-staging has no ResourceQuota",
        "gpu-quotas": "no requests.nvidia.com/gpu quota in: search-staging",
    }
    for check_id, reason in expected_failures.items():
        status, evidence = seen[check_id]
        assert status is Status.FAIL, check_id
        assert reason in evidence, (check_id, evidence)
    for check_id in CLUSTER_CHECKS - set(expected_failures):
        assert seen[check_id][0] is Status.PASS, check_id
    # The blueprint says yes, the cluster says no: the box stays empty.
    assert {r.check.id: r.status for r in report.results}["rollouts-progressive"] is Status.FAIL


def test_an_unreachable_cluster_makes_every_live_check_unknown_never_pass(
    kind_dev: Blueprint, make_healthy_cluster: Callable[[Blueprint], FakeCluster]
) -> None:
    fake = make_healthy_cluster(kind_dev)
    fake.unavailable = {"*"}
    report = assess(kind_dev, "kind-dev", fake)
    seen = _cluster_observations(report, fake.name)
    assert set(seen) == CLUSTER_CHECKS
    assert {status for status, _ in seen.values()} == {Status.UNKNOWN}
    assert all("connection refused" in evidence for _, evidence in seen.values())
    results = {result.check.id: result.status for result in report.results}
    for check_id in CLUSTER_CHECKS:
        assert results[check_id] is not Status.PASS, check_id
    # Probed once, not once per check.
    assert fake.calls == ["namespaces"]
    assert not report.sources[1].available


def test_one_unanswerable_question_makes_only_its_check_unknown(
    kind_dev: Blueprint, make_healthy_cluster: Callable[[Blueprint], FakeCluster]
) -> None:
    fake = make_healthy_cluster(kind_dev)
    fake.unavailable = {"network_policy_names"}
    seen = _cluster_observations(assess(kind_dev, "kind-dev", fake), fake.name)
    assert seen["tenancy-namespaces"][0] is Status.UNKNOWN
    assert all(status is Status.PASS for check_id, (status, _) in seen.items() if check_id != "tenancy-namespaces")


def test_the_real_client_reports_a_dead_api_server_as_unknown_quickly(tmp_path: Path, kind_dev: Blueprint) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    # Port 1 on loopback refuses at once: the client's error path, with no network needed.
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: dead\n"
        "clusters: [{name: dead, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n"
        "users: [{name: dead, user: {token: not-a-real-token}}]\n"
        "contexts: [{name: dead, context: {cluster: dead, user: dead}}]\n"
    )
    started = time.monotonic()
    report = assess(kind_dev, "kind-dev", KubeCluster("dead", kubeconfig))
    assert time.monotonic() - started < 10
    seen = _cluster_observations(report, "dead")
    assert {status for status, _ in seen.values()} == {Status.UNKNOWN}
    assert "unreachable" in report.sources[1].detail


def test_the_real_client_reports_a_missing_context_as_unknown(tmp_path: Path, kind_dev: Blueprint) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    report = assess(kind_dev, "kind-dev", KubeCluster("kind-nowhere", kubeconfig))
    assert "kind-nowhere" in report.sources[1].detail
    assert not any(obs.status is Status.PASS for result in report.results for obs in result.observations
                   if obs.source.startswith("cluster:"))
