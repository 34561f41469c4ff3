"""Evidence from the GitOps history: what `shipway dora` measured says whether promotion and gating really happen."""

from __future__ import annotations

from collections.abc import Callable

from shipway.dora.metrics import DoraReport
from shipway.readiness.model import Finding, failed, passed

DoraEvaluator = Callable[[DoraReport], Finding]


def _gitops_promotion(report: DoraReport) -> Finding:
    keys = report.platform
    if keys.deployments == 0:
        return failed(f"no promotion to {report.environment} landed in the GitOps history over "
                      f"{report.window.days:g} days")
    band = keys.bands["deployment_frequency"].value
    return passed(f"{keys.deployments} promotions to {report.environment} over {report.window.days:g} days "
                  f"(deployment frequency: {band}), each a commit with Shipway's trailers")


def _gates_statistical(report: DoraReport) -> Finding:
    changes = [item for item in report.deployments if not item.rollback
               and item.deployed_at in report.window]
    if not changes:
        return failed(f"no promotion to {report.environment} in the window shows a gate verdict")
    ungated = sorted({f"{item.model} {item.version}" for item in changes if item.gate != "pass"})
    if ungated:
        return failed(f"{len(ungated)} of {len(changes)} promotions to {report.environment} shipped without a "
                      f"passed gate: {', '.join(ungated[:5])}")
    return passed(f"all {len(changes)} promotions to {report.environment} carry a passed gate verdict")


EVALUATORS: dict[str, DoraEvaluator] = {
    "gitops-promotion": _gitops_promotion,
    "gates-statistical": _gates_statistical,
}
