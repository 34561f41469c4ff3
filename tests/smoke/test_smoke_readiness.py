"""`shipway readiness` against the live kind cluster: every live check passes on a freshly deployed dev stack."""

from __future__ import annotations

from typing import Any

import pytest

from smoke_support import BLUEPRINT, Cluster

pytestmark = pytest.mark.smoke


def test_readiness_confirms_the_dev_stack_live_crds_releases_and_rules(cluster: Cluster, blueprint: Any) -> None:
    from shipway.readiness import KubeCluster, Status, assess
    from shipway.readiness import cluster as cluster_evidence

    live = KubeCluster(cluster.context, cluster.kubeconfig)
    report = assess(blueprint, str(BLUEPRINT), live)
    assert report.sources[1].available, report.sources[1].detail
    seen = {result.check.id: obs for result in report.results for obs in result.observations
            if obs.source == f"cluster:{cluster.context}"}
    assert set(seen) == set(cluster_evidence.EVALUATORS)
    not_passing = {check_id: obs.evidence for check_id, obs in seen.items() if obs.status is not Status.PASS}
    assert not_passing == {}
    # Live evidence never lowers kind-dev's blueprint score: the same boxes are checked.
    assert report.passed == 12, report.verdict
