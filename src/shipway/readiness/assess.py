"""Run every check against every source given, and score the result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from pathlib import Path

from shipway.errors import ShipwayError
from shipway.readiness import blueprint_evidence, cluster as cluster_evidence, delivery_evidence, repo as repo_evidence
from shipway.readiness.checklist import CATEGORIES, CHECKS
from shipway.readiness.cluster import ClusterReader, ClusterUnavailable
from shipway.readiness.model import (
    CheckResult,
    Observation,
    Report,
    SourceKind,
    SourceSummary,
    Status,
)
from shipway.readiness.repo import ModelRepo
from shipway.spec.blueprint import Blueprint

if TYPE_CHECKING:
    from shipway.dora.metrics import DoraReport


class ReadinessInputError(ShipwayError):
    """An input the assessment cannot use, such as a model repo that is not a directory."""

    exit_code = 2


def load_repos(paths: Sequence[Path]) -> list[ModelRepo]:
    """Read each model repo; a path that is not a directory is the caller's mistake, not a failed check."""
    missing = [str(path) for path in paths if not path.is_dir()]
    if missing:
        raise ReadinessInputError(f"--model-repo is not a directory: {', '.join(missing)}")
    return [repo_evidence.load_repo(path) for path in paths]


def sources_for(check_id: str) -> list[SourceKind]:
    """The sources a check can be assessed from."""
    kinds = []
    if check_id in blueprint_evidence.EVALUATORS:
        kinds.append(SourceKind.BLUEPRINT)
    if check_id in cluster_evidence.EVALUATORS:
        kinds.append(SourceKind.CLUSTER)
    if check_id in repo_evidence.EVALUATORS:
        kinds.append(SourceKind.MODEL_REPO)
    if check_id in delivery_evidence.EVALUATORS:
        kinds.append(SourceKind.GITOPS_REPO)
    return kinds


def _cluster_summary(cluster: ClusterReader) -> tuple[SourceSummary, str]:
    """Probe once, so an unreachable cluster is reported once and every cluster check says why."""
    try:
        count = len(cluster.namespaces())
    except ClusterUnavailable as error:
        return SourceSummary(SourceKind.CLUSTER, f"cluster:{cluster.name}", False, str(error)), str(error)
    return SourceSummary(SourceKind.CLUSTER, f"cluster:{cluster.name}", True, f"{count} namespaces"), ""


def assess(blueprint: Blueprint, blueprint_name: str, cluster: ClusterReader | None = None,
           repos: Sequence[ModelRepo] = (), dora: DoraReport | None = None) -> Report:
    """Every check, assessed from the blueprint and whichever cluster, model repos and GitOps history are given."""
    sources = [SourceSummary(SourceKind.BLUEPRINT, "blueprint", True, blueprint_name)]
    cluster_problem = ""
    if cluster is not None:
        summary, cluster_problem = _cluster_summary(cluster)
        sources.append(summary)
    sources += [SourceSummary(SourceKind.MODEL_REPO, repo.name, True, str(repo.path)) for repo in repos]
    if dora is not None:
        sources.append(SourceSummary(SourceKind.GITOPS_REPO, "gitops-repo", True,
                                     f"{dora.repository}: {'; '.join(dora.sources)}"))

    results = []
    for check in CHECKS:
        observations: list[Observation] = []
        if (evaluate := blueprint_evidence.EVALUATORS.get(check.id)) is not None:
            finding = evaluate(blueprint)
            observations.append(Observation("blueprint", finding.status, finding.evidence))
        if cluster is not None and (live := cluster_evidence.EVALUATORS.get(check.id)) is not None:
            name = f"cluster:{cluster.name}"
            if cluster_problem:
                observations.append(Observation(name, Status.UNKNOWN, f"cluster not readable: {cluster_problem}"))
            else:
                try:
                    seen = live(cluster, blueprint)
                except ClusterUnavailable as error:
                    observations.append(Observation(name, Status.UNKNOWN, f"cluster not readable: {error}"))
                else:
                    if seen is not None:
                        observations.append(Observation(name, seen.status, seen.evidence))
        if (inspect := repo_evidence.EVALUATORS.get(check.id)) is not None:
            for repo in repos:
                finding = inspect(repo)
                observations.append(Observation(repo.name, finding.status, finding.evidence))
        if dora is not None and (measured := delivery_evidence.EVALUATORS.get(check.id)) is not None:
            finding = measured(dora)
            observations.append(Observation("gitops-repo", finding.status, finding.evidence))
        if not observations:
            observations.append(_not_given(check.id))
        results.append(CheckResult(check, tuple(observations)))
    delivery = dora.to_dict()["platform"] | {"environment": dora.environment,
                                             "window_days": dora.window.days} if dora is not None else None
    return Report(blueprint_name, tuple(results), CATEGORIES, tuple(sources), delivery=delivery)


def _not_given(check_id: str) -> Observation:
    """Why a check has no evidence: the only sources that could decide it were not given."""
    kinds = sources_for(check_id)
    flags = {SourceKind.CLUSTER: "--context", SourceKind.MODEL_REPO: "--model-repo",
             SourceKind.GITOPS_REPO: "--gitops-repo"}
    wanted = " or ".join(f"{kind.value} ({flags[kind]})" for kind in kinds if kind in flags)
    return Observation(" / ".join(kind.value for kind in kinds), Status.UNKNOWN, f"needs a {wanted}; none given")
