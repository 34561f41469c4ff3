"""Tenancy: GPU pods land on GPU pools only, and a team namespace refuses a pod over its GPU quota."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from smoke_support import Cluster, gpu_pod, tolerations_for, wait_until

pytestmark = pytest.mark.smoke

POOL_LABEL = "shipway.dev/pool"


def test_a_gpu_pod_schedules_on_a_gpu_pool_and_nowhere_else(
    cluster: Cluster, blueprint: Any, core: Any, scratch_namespace: str
) -> None:
    gpu_pools = {pool.name for pool in blueprint.gpu_pools}
    taints = [taint for pool in blueprint.gpu_pools for taint in pool.effective_taints]
    tolerating = gpu_pod("gpu-tolerating", scratch_namespace, 1, tolerations_for(taints))
    untolerating = gpu_pod("gpu-untolerating", scratch_namespace, 1, [])
    core.create_namespaced_pod(scratch_namespace, tolerating)
    core.create_namespaced_pod(scratch_namespace, untolerating)

    node_name = wait_until(
        lambda: core.read_namespaced_pod("gpu-tolerating", scratch_namespace).spec.node_name,
        timeout=180,
        what="the GPU pod to be scheduled",
    )
    assert core.read_node(node_name).metadata.labels.get(POOL_LABEL) in gpu_pools

    # Without the toleration, the only nodes with GPUs are closed to it: it must stay Pending.
    def unschedulable() -> bool:
        pod = core.read_namespaced_pod("gpu-untolerating", scratch_namespace)
        conditions = {c.type: c for c in pod.status.conditions or []}
        scheduled = conditions.get("PodScheduled")
        return bool(scheduled and scheduled.status == "False" and scheduled.reason == "Unschedulable")

    wait_until(unschedulable, timeout=120, what="the untolerating GPU pod to be reported Unschedulable")
    assert core.read_namespaced_pod("gpu-untolerating", scratch_namespace).spec.node_name is None


def test_a_team_namespace_refuses_a_pod_over_its_gpu_quota(cluster: Cluster, blueprint: Any, core: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    team = next((team for team in blueprint.teams if team.quota.gpus > 0), blueprint.teams[0])
    namespace = team.namespace(blueprint.team_environments(team)[0])
    quotas = core.list_namespaced_resource_quota(namespace).items
    hard = {key: value for quota in quotas for key, value in (quota.status.hard or {}).items()}
    assert hard.get("requests.nvidia.com/gpu") == str(team.quota.gpus), hard

    taints = [taint for pool in blueprint.team_gpu_pools(team) for taint in pool.effective_taints]
    name = f"over-quota-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, gpu_pod(name, namespace, team.quota.gpus + 1, tolerations_for(taints)))
    assert refused.value.status == 403
    assert "exceeded quota" in refused.value.body
