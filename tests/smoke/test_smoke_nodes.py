"""Nodes: each pool's labels and taints, simulated GPUs on GPU pools only, kind node containers healthy."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import testinfra

from smoke_support import Cluster, tool_problem, wait_until

pytestmark = pytest.mark.smoke

POOL_LABEL = "shipway.dev/pool"
GPU_PRESENT = "nvidia.com/gpu.present"


def nodes_of(core: Any, pool: str) -> list[Any]:
    return core.list_node(label_selector=f"{POOL_LABEL}={pool}").items


def test_each_pool_has_nodes_with_its_labels_and_taints(cluster: Cluster, blueprint: Any, core: Any) -> None:
    for pool in blueprint.node_pools:
        nodes = nodes_of(core, pool.name)
        # kind-config makes one worker per pool.
        assert len(nodes) == 1, f"pool {pool.name}: {[node.metadata.name for node in nodes]}"
        for node in nodes:
            labels = node.metadata.labels
            for key, value in pool.node_labels.items():
                assert labels.get(key) == value, f"{node.metadata.name}: label {key}"
            taints = {(t.key, t.value or "", t.effect) for t in node.spec.taints or []}
            expected = {(t.key, t.value, t.effect) for t in pool.effective_taints}
            assert expected <= taints, f"{node.metadata.name}: taints {taints}"
            if not pool.is_gpu:
                assert GPU_PRESENT not in labels
                assert not any(key == "nvidia.com/gpu" for key, _, _ in taints)


def test_simulated_gpus_are_allocatable_on_gpu_pools_only(cluster: Cluster, blueprint: Any, core: Any) -> None:
    for pool in blueprint.node_pools:
        for node in nodes_of(core, pool.name):
            name = node.metadata.name
            if pool.is_gpu:
                # fake-gpu-operator's device plugin advertises GPUs a little after the node joins.
                allocatable = wait_until(
                    lambda: core.read_node(name).status.allocatable.get("nvidia.com/gpu"),
                    timeout=300,
                    what=f"nvidia.com/gpu allocatable on {name}",
                )
                assert int(allocatable) == blueprint.schedulable_gpus(pool) // pool.max_size
            else:
                assert "nvidia.com/gpu" not in (node.status.allocatable or {}), name


def test_every_kind_node_container_runs_kubelet_and_containerd(cluster: Cluster) -> None:
    problems = [problem for tool in ("docker", "kind") if (problem := tool_problem(tool))]
    if problems:
        pytest.skip("the node container checks need " + "; ".join(problems))
    names = subprocess.run(
        ["kind", "get", "nodes", "--name", cluster.name], capture_output=True, text=True, timeout=60
    ).stdout.split()
    if not names:
        pytest.skip(f"kind has no nodes for cluster {cluster.name} on this docker engine (provisioned elsewhere)")
    for name in names:
        node = testinfra.get_host(f"docker://{name}")
        assert node.service("kubelet").is_running, name
        assert node.service("containerd").is_running, name
        assert node.file("/etc/containerd/config.toml").exists, name
