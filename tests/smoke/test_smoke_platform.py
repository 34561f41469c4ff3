"""The platform releases: pods Ready, Argo CD's ApplicationSet, Prometheus scraping DCGM and Argo Rollouts."""

from __future__ import annotations

import json
from typing import Any

import pytest
import testinfra

from smoke_support import Cluster, wait_until

pytestmark = pytest.mark.smoke


def helm_releases(core: Any) -> dict[str, str]:
    """Deployed Helm releases as name -> namespace, from Helm's own release secrets."""
    secrets = core.list_secret_for_all_namespaces(label_selector="owner=helm,status=deployed").items
    return {secret.metadata.labels["name"]: secret.metadata.namespace for secret in secrets}


def unready_pods(core: Any, namespace: str) -> list[str]:
    unready = []
    for pod in core.list_namespaced_pod(namespace).items:
        if pod.status.phase == "Succeeded":
            continue
        conditions = {condition.type: condition.status for condition in pod.status.conditions or []}
        if conditions.get("Ready") != "True":
            unready.append(f"{pod.metadata.name} ({pod.status.phase})")
    return unready


def test_every_platform_release_is_deployed_with_its_pods_ready(cluster: Cluster, core: Any) -> None:
    from shipway import catalog

    releases = helm_releases(core)
    expected_charts = {catalog.ARGO_CD.name, catalog.ARGO_ROLLOUTS.name, catalog.KUBE_PROMETHEUS_STACK.name,
                       catalog.ZOT.name, catalog.FAKE_GPU_OPERATOR.name}
    assert releases, "no deployed Helm release in the cluster"
    assert len(releases) >= len(expected_charts), releases
    for namespace in sorted(set(releases.values())):
        wait_until(lambda: not unready_pods(core, namespace) or None, timeout=600, what=f"pods Ready in {namespace}")
        assert not unready_pods(core, namespace)


def test_argo_cd_lists_the_model_application_set(cluster: Cluster, custom: Any) -> None:
    from shipway.render import gitops

    sets = custom.list_namespaced_custom_object("argoproj.io", "v1alpha1", gitops.NAMESPACE, "applicationsets")
    names = [item["metadata"]["name"] for item in sets["items"]]
    assert gitops.APPLICATION_SET in names


def test_prometheus_has_dcgm_and_argo_rollouts_targets_up(cluster: Cluster, core: Any) -> None:
    from shipway.render import observability

    pods = core.list_namespaced_pod(
        observability.NAMESPACE, label_selector="app.kubernetes.io/name=prometheus"
    ).items
    assert pods, f"no Prometheus pod in {observability.NAMESPACE}"
    prometheus = testinfra.get_host(
        cluster.testinfra_spec(pods[0].metadata.name, observability.NAMESPACE, container="prometheus")
    )

    def targets_up() -> dict[str, bool] | None:
        # The Prometheus image is busybox-based: it has sh and wget.
        body = prometheus.check_output("wget -qO- 'http://localhost:9090/api/v1/targets?state=active'")
        active = json.loads(body)["data"]["activeTargets"]
        found = {
            wanted: any(wanted in target["scrapePool"].lower() and target["health"] == "up" for target in active)
            for wanted in ("dcgm", "rollouts")
        }
        return found if all(found.values()) else None

    assert wait_until(targets_up, timeout=300, what="dcgm and argo-rollouts targets up", interval=10)
