"""The GPU stack layer: simulated on kind, MIG under the operator on EKS, time-slicing with the plugin on GKE."""

from __future__ import annotations

import yaml

from shipway.render import gpu
from shipway.spec.blueprint import MIG_CONFIG_LABEL, Toleration


def test_kind_installs_fake_gpu_operator_with_a_topology_per_pool(kind_dev):
    release = kind_dev.releases["fake-gpu-operator"]
    resource = kind_dev.named("shipway-dev-gpu-fake-gpu-operator")
    assert kind_dev.parent_type(resource) == "shipway:gpu:GpuStack"
    assert resource.provider == "shipway-dev-cluster-provider-id"
    topology = release["values"]["topology"]
    assert topology["nodePoolLabelKey"] == gpu.SIMULATED_POOL_LABEL
    assert topology["nodePools"] == {"gpu-small": {"gpuCount": 2, "gpuProduct": "NVIDIA-L4"},
                                     "gpu-large": {"gpuCount": 1, "gpuProduct": "NVIDIA-A100-80GB"}}
    assert not {"gpu-operator", "nvidia-device-plugin"} & set(kind_dev.releases)


def test_simulated_chart_tolerates_every_gpu_pool_taint(kind_dev):
    fixed = Toleration(**gpu.SIMULATED_TOLERATION)
    for pool in kind_dev.blueprint.gpu_pools:
        assert all(fixed.tolerates(taint) for taint in pool.effective_taints), pool.name


def test_eks_operator_values_carry_mig_and_tolerate_pool_taints(eks_prod):
    values = eks_prod.releases["gpu-operator"]["values"]
    assert values["mig"] == {"strategy": "mixed"}
    assert values["migManager"] == {"enabled": True}
    assert values["driver"] == {"enabled": False}
    assert "devicePlugin" not in values
    tolerations = [Toleration(**t) for t in values["daemonsets"]["tolerations"]]
    for pool in eks_prod.blueprint.gpu_pools:
        for taint in pool.effective_taints:
            assert any(t.tolerates(taint) for t in tolerations), (pool.name, taint)


def test_mig_label_only_on_the_partitioned_pool(eks_prod):
    inventory = eks_prod.kind("ConfigMap")
    [pools] = [cm for cm in inventory if cm["metadata"]["name"] == "shipway-node-pools"]
    labels = {name: yaml.safe_load(raw)["labels"] for name, raw in pools["data"].items()}
    assert labels["h100"][MIG_CONFIG_LABEL] == "all-1g.10gb"
    assert MIG_CONFIG_LABEL not in labels["a10g"]


def test_gke_time_slicing_config_is_what_the_plugin_reads(gke_prod):
    [config] = [cm for cm in gke_prod.kind("ConfigMap") if cm["metadata"]["name"] == gpu.TIME_SLICING_CONFIG]
    assert config["metadata"]["namespace"] == gpu.NAMESPACE
    parsed = yaml.safe_load(config["data"][gpu.TIME_SLICING_KEY])
    assert parsed == {"version": "v1", "flags": {"migStrategy": "none"},
                      "sharing": {"timeSlicing": {"renameByDefault": False, "failRequestsGreaterThanOne": False,
                                                  "resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}}
    plugin = gke_prod.releases["nvidia-device-plugin"]["values"]
    assert plugin["config"] == {"name": gpu.TIME_SLICING_CONFIG, "default": gpu.TIME_SLICING_KEY}
    assert plugin["migStrategy"] == "none"
    tolerations = [Toleration(**t) for t in plugin["tolerations"]]
    assert all(any(t.tolerates(taint) for t in tolerations)
               for pool in gke_prod.blueprint.gpu_pools for taint in pool.effective_taints)
    assert "dcgm-exporter" in gke_prod.releases


def test_gpu_namespace_is_privileged_for_node_agents(each_blueprint):
    [ns] = [n for n in each_blueprint.kind("Namespace") if n["metadata"]["name"] == gpu.NAMESPACE]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
