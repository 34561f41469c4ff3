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
    # The chart's own default pool (Tesla K80s) is deleted; each pool declares its GPUs' memory in MiB.
    assert topology["nodePools"] == {"default": None,
                                     "gpu-small": {"gpuCount": 2, "gpuProduct": "NVIDIA-L4", "gpuMemory": 24 * 1024},
                                     "gpu-large": {"gpuCount": 1, "gpuProduct": "NVIDIA-A100-80GB",
                                                   "gpuMemory": 80 * 1024}}
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


def test_gke_device_plugin_mode_leaves_the_plugin_to_gke(gke_prod):
    # GKE's nodes run no NVIDIA container runtime, which NVIDIA's standalone plugin needs.
    assert "nvidia-device-plugin" not in gke_prod.releases
    assert not [cm for cm in gke_prod.kind("ConfigMap") if cm["metadata"]["name"] == gpu.TIME_SLICING_CONFIG]
    dcgm = gke_prod.releases["dcgm-exporter"]["values"]
    assert dcgm["extraHostVolumes"] == [{"name": "nvidia-install-dir-host", "hostPath": gpu.GKE_NVIDIA_DIR}]
    # The list replaces the chart's: its counters-file mount is kept beside GKE's library mount.
    assert dcgm["extraVolumeMounts"] == [*gpu.DCGM_EXPORTER_DEFAULT_MOUNTS,
                                         {"name": "nvidia-install-dir-host", "mountPath": "/usr/local/nvidia",
                                          "readOnly": True}]
    tolerations = [Toleration(**t) for t in dcgm["tolerations"]]
    assert all(any(t.tolerates(taint) for t in tolerations)
               for pool in gke_prod.blueprint.gpu_pools for taint in pool.effective_taints)


def test_time_slicing_config_is_what_the_standalone_plugin_reads():
    from shipway.spec.blueprint import Blueprint

    blueprint = Blueprint.model_validate({
        "metadata": {"name": "onprem"}, "cluster": {"kind": "existing", "context": "onprem"},
        "nodePools": [{"name": "l4", "gpu": {"model": "l4"}, "maxSize": 4}],
        "gpuStack": {"mode": "device-plugin", "simulate": False, "sharing": {"strategy": "time-slicing", "replicas": 4}},
        "gitops": {"enabled": False},
    })
    layer = gpu.render(blueprint)
    [config] = [cm for cm in layer.objects if cm["metadata"]["name"] == gpu.TIME_SLICING_CONFIG]
    assert config["metadata"]["namespace"] == gpu.NAMESPACE
    parsed = yaml.safe_load(config["data"][gpu.TIME_SLICING_KEY])
    assert parsed == {"version": "v1", "flags": {"migStrategy": "none"},
                      "sharing": {"timeSlicing": {"renameByDefault": False, "failRequestsGreaterThanOne": False,
                                                  "resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}}
    [plugin] = [release.values for release in layer.releases if release.name == "nvidia-device-plugin"]
    assert plugin["config"] == {"name": gpu.TIME_SLICING_CONFIG, "default": gpu.TIME_SLICING_KEY}
    assert plugin["migStrategy"] == "none"


def test_gpu_namespace_is_privileged_for_node_agents(each_blueprint):
    [ns] = [n for n in each_blueprint.kind("Namespace") if n["metadata"]["name"] == gpu.NAMESPACE]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_gke_with_the_operator_uses_gke_paths_cdi_and_a_critical_pod_quota():
    from shipway.spec.blueprint import Blueprint

    blueprint = Blueprint.model_validate({
        "metadata": {"name": "gke-op"}, "cluster": {"kind": "gke", "project": "acme-ml-prod", "region": "europe-west4",
                    "zones": ["europe-west4-a"]},
        "nodePools": [{"name": "sys", "role": "system", "instanceType": "e2-standard-8"},
                      {"name": "a100", "instanceType": "a2-highgpu-1g", "gpu": {"model": "a100-40gb"}}],
        "gpuStack": {"mode": "operator"}, "gitops": {"enabled": False},
    })
    layer = gpu.render(blueprint)
    [operator] = [release.values for release in layer.releases if release.name == "gpu-operator"]
    assert operator["hostPaths"] == {"driverInstallDir": gpu.GKE_NVIDIA_DIR}
    assert operator["toolkit"]["installDir"] == gpu.GKE_NVIDIA_DIR
    assert operator["cdi"] == {"enabled": True, "default": True}
    assert operator["driver"] == {"enabled": False}
    [quota] = [obj for obj in layer.objects if obj["kind"] == "ResourceQuota"]
    scope = quota["spec"]["scopeSelector"]["matchExpressions"][0]
    assert scope["scopeName"] == "PriorityClass" and "system-node-critical" in scope["values"]


def test_eks_leaves_the_container_toolkit_to_its_nvidia_ami(eks_prod):
    # AL2023 NVIDIA AMIs (managed node groups and Karpenter's al2023 alias) ship driver and toolkit.
    values = eks_prod.releases["gpu-operator"]["values"]
    assert values["toolkit"]["enabled"] is False and values["driver"]["enabled"] is False


def test_gke_dcgm_exporter_runs_privileged_and_admissible(gke_prod):
    import yaml
    from layer_support import REPO

    ours = gke_prod.releases["dcgm-exporter"]["values"]["securityContext"]
    assert ours["privileged"] is True
    # Helm merges our securityContext over the chart's; Kubernetes refuses privileged beside
    # allowPrivilegeEscalation: false, which the chart sets.
    chart = yaml.safe_load((REPO.parent / "shared" / "charts" / "dcgm-exporter-4.8.2" / "values.yaml").read_text())
    merged = {**chart["securityContext"], **ours}
    assert not (merged["privileged"] and merged.get("allowPrivilegeEscalation") is False)
    assert merged["runAsNonRoot"] is False or merged["runAsUser"] != 0
