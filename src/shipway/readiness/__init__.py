"""The AI delivery readiness assessment: a checklist scored from a blueprint, a live cluster and model repos."""

from __future__ import annotations

from shipway.readiness.assess import ReadinessInputError, assess, load_repos
from shipway.readiness.checklist import CATEGORIES, CHECKS, CHECKS_BY_ID
from shipway.readiness.cluster import ClusterReader, ClusterUnavailable, KubeCluster, Workload
from shipway.readiness.model import EIGHT_BOX_THRESHOLD, Report, Status

__all__ = [
    "CATEGORIES", "CHECKS", "CHECKS_BY_ID", "EIGHT_BOX_THRESHOLD", "ClusterReader", "ClusterUnavailable",
    "KubeCluster", "ReadinessInputError", "Report", "Status", "Workload", "assess", "load_repos",
]
