"""The GPU stack: GPU Operator or device plugin values, time-slicing and MIG config, simulation."""

from __future__ import annotations

import yaml

from shipway import catalog
from shipway.catalog import PROMETHEUS_RELEASE
from shipway.render.common import Obj, config_map, critical_pods_quota, deep_merge, namespace, service_monitor
from shipway.render.layer import LayerRender, Release
from shipway.spec.blueprint import MIG_CONFIG_LABEL, Blueprint, MigSharing, TimeSlicing
from shipway.spec.gpus import GPU_MODELS

NAMESPACE = "gpu-operator"
TIME_SLICING_CONFIG = "time-slicing-config"
TIME_SLICING_KEY = "any"
SIMULATED_POOL_LABEL = "run.ai/simulated-gpu-node-pool"
# Where GKE installs the NVIDIA driver and libraries on its nodes.
GKE_NVIDIA_DIR = "/home/kubernetes/bin/nvidia"
# The dcgm-exporter chart's default extraVolumeMounts: the counters file its default arguments read.
DCGM_EXPORTER_DEFAULT_MOUNTS: list[Obj] = [
    {"name": "exporter-metrics-volume", "mountPath": "/etc/dcgm-exporter/default-counters.csv",
     "subPath": "default-counters.csv"},
]
# fake-gpu-operator's device plugin and exporter tolerate only this; their tolerations are not chart values.
SIMULATED_TOLERATION: Obj = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def tolerations(blueprint: Blueprint) -> list[Obj]:
    """Tolerations for GPU stack pods, as Kubernetes objects."""
    out = []
    for toleration in blueprint.gpu_tolerations:
        item: Obj = {"key": toleration.key, "operator": toleration.operator}
        if toleration.operator == "Equal":
            item["value"] = toleration.value
        if toleration.effect:
            item["effect"] = toleration.effect
        out.append(item)
    return out


def time_slicing_config(sharing: TimeSlicing) -> str:
    """The device plugin's sharing config for time-slicing, as the plugin reads it."""
    config = {
        "version": "v1",
        "flags": {"migStrategy": "none"},
        "sharing": {
            "timeSlicing": {
                "renameByDefault": sharing.rename_by_default,
                "failRequestsGreaterThanOne": False,
                "resources": [{"name": "nvidia.com/gpu", "replicas": sharing.replicas}],
            }
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def pool_node_labels(blueprint: Blueprint) -> dict[str, dict[str, str]]:
    """Labels the GPU stack needs on each GPU pool's nodes (MIG config, simulated pool)."""
    labels: dict[str, dict[str, str]] = {}
    sharing = blueprint.gpu_stack.sharing
    mig_pools = {pool.name for pool in blueprint.mig_pools()}
    for pool in blueprint.gpu_pools:
        pool_labels: dict[str, str] = {}
        if isinstance(sharing, MigSharing) and pool.name in mig_pools:
            pool_labels[MIG_CONFIG_LABEL] = sharing.profile
        if blueprint.simulate_gpus:
            pool_labels[SIMULATED_POOL_LABEL] = pool.name
        labels[pool.name] = pool_labels
    return labels


def operator_values(blueprint: Blueprint) -> Obj:
    """Values for the NVIDIA GPU Operator chart."""
    stack = blueprint.gpu_stack
    sharing = stack.sharing
    values: Obj = {
        "driver": {"enabled": stack.install_driver},
        "toolkit": {"enabled": blueprint.installs_toolkit},
        "daemonsets": {"tolerations": tolerations(blueprint)},
        "dcgmExporter": {
            "enabled": stack.dcgm_exporter,
            "serviceMonitor": {
                "enabled": stack.dcgm_exporter,
                "interval": "15s",
                "additionalLabels": {"release": PROMETHEUS_RELEASE},
            },
        },
        "mig": {"strategy": sharing.mig_strategy if isinstance(sharing, MigSharing) else "single"},
        "migManager": {"enabled": isinstance(sharing, MigSharing)},
    }
    if isinstance(sharing, TimeSlicing):
        values["devicePlugin"] = {"config": {"name": TIME_SLICING_CONFIG, "default": TIME_SLICING_KEY}}
    if blueprint.cluster.kind == "gke":
        # GKE keeps its driver and toolkit under its own directory, and its containerd takes no
        # runtime drop-ins, so the operator must hand devices to pods through CDI.
        values["hostPaths"] = {"driverInstallDir": GKE_NVIDIA_DIR}
        values["toolkit"]["installDir"] = GKE_NVIDIA_DIR
        values["cdi"] = {"enabled": True, "default": True}
    return deep_merge(values, stack.values)


def device_plugin_values(blueprint: Blueprint) -> Obj:
    """Values for the standalone NVIDIA device plugin chart."""
    stack = blueprint.gpu_stack
    sharing = stack.sharing
    values: Obj = {
        "tolerations": tolerations(blueprint),
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "migStrategy": sharing.mig_strategy if isinstance(sharing, MigSharing) else "none",
        "gfd": {"enabled": True},
    }
    if isinstance(sharing, TimeSlicing):
        values["config"] = {"name": TIME_SLICING_CONFIG, "default": TIME_SLICING_KEY}
    return deep_merge(values, stack.values)


def dcgm_exporter_values(blueprint: Blueprint) -> Obj:
    """Values for the standalone DCGM exporter, used beside the device plugin."""
    values: Obj = {
        "tolerations": tolerations(blueprint),
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "serviceMonitor": {"enabled": True, "interval": "15s", "additionalLabels": {"release": PROMETHEUS_RELEASE}},
    }
    if blueprint.cluster.kind == "gke":
        # GKE's nodes run no NVIDIA container runtime to inject the libraries; mount GKE's copy.
        values["extraHostVolumes"] = [{"name": "nvidia-install-dir-host", "hostPath": GKE_NVIDIA_DIR}]
        # A list value replaces the chart's whole list: keep its own mount of the counters file its
        # arguments name (dcgm-exporter 4.8.2 values.yaml: arguments -f, extraVolumeMounts).
        values["extraVolumeMounts"] = [*DCGM_EXPORTER_DEFAULT_MOUNTS,
                                       {"name": "nvidia-install-dir-host", "mountPath": "/usr/local/nvidia",
                                        "readOnly": True}]
        values["extraEnv"] = [{"name": "LD_LIBRARY_PATH", "value": "/usr/local/nvidia/lib64"}]
        # Without the NVIDIA runtime nothing hands the container GKE's /dev/nvidia* devices; only a
        # privileged container sees them, and NVML fails to initialise without them. Helm merges these over
        # the chart's allowPrivilegeEscalation: false, which Kubernetes refuses beside privileged: true.
        values["securityContext"] = {"privileged": True, "allowPrivilegeEscalation": True, "runAsNonRoot": False,
                                     "runAsUser": 0, "capabilities": {"add": ["SYS_ADMIN"]}}
    return values


def gke_critical_pods_quota() -> Obj:
    """GKE admits system-node-critical pods outside kube-system only under a quota that names them."""
    return critical_pods_quota(NAMESPACE, "gpu-operator-critical-pods", 100)


def gke_manages_device_plugin(blueprint: Blueprint) -> bool:
    """On GKE without the operator, GKE's own device plugin advertises GPUs and does time-sharing.

    NVIDIA's standalone plugin needs the NVIDIA container runtime, which GKE's nodes do not run.
    """
    return blueprint.cluster.kind == "gke" and blueprint.gpu_stack.mode == "device-plugin"


def fake_operator_values(blueprint: Blueprint) -> Obj:
    """Values for fake-gpu-operator: one simulated topology per GPU pool."""
    # Helm merges maps, so the chart's own `default` pool (two Tesla K80s) would sit beside Shipway's;
    # a null value deletes it.
    pools: Obj = {"default": None}
    for pool in blueprint.gpu_pools:
        assert pool.gpu is not None
        pools[pool.name] = {"gpuCount": pool.gpu.count, "gpuProduct": f"NVIDIA-{pool.gpu.model.upper()}",
                            "gpuMemory": GPU_MODELS[pool.gpu.model].memory_gib * 1024}  # MiB, as nvidia-smi
    # The chart's exporter Service carries no label the Prometheus stack selects by; the layer emits a
    # ServiceMonitor that it does (fake_exporter_service_monitor).
    values: Obj = {"topology": {"nodePoolLabelKey": SIMULATED_POOL_LABEL, "nodePools": pools}}
    return deep_merge(values, blueprint.gpu_stack.values)


def fake_exporter_service_monitor() -> Obj:
    """A ServiceMonitor for fake-gpu-operator's simulated DCGM exporter (service nvidia-dcgm-exporter)."""
    return service_monitor("shipway-simulated-dcgm-exporter", NAMESPACE, {"app": "nvidia-dcgm-exporter"},
                           "gpu-metrics")


def render(blueprint: Blueprint) -> LayerRender:
    """The GPU stack's namespace, releases and config objects."""
    layer = LayerRender(namespaces=[namespace(NAMESPACE)])
    sharing = blueprint.gpu_stack.sharing
    if not blueprint.gpu_pools:
        return layer
    if blueprint.simulate_gpus:
        layer.releases.append(Release("fake-gpu-operator", catalog.FAKE_GPU_OPERATOR, NAMESPACE,
                                      fake_operator_values(blueprint)))
        layer.objects.append(fake_exporter_service_monitor())
        return layer
    if isinstance(sharing, TimeSlicing) and not gke_manages_device_plugin(blueprint):
        layer.objects.append(config_map(TIME_SLICING_CONFIG, NAMESPACE,
                                        {TIME_SLICING_KEY: time_slicing_config(sharing)}))
    if blueprint.gpu_stack.mode == "operator":
        layer.releases.append(Release("gpu-operator", catalog.GPU_OPERATOR, NAMESPACE, operator_values(blueprint)))
        if blueprint.cluster.kind == "gke":
            layer.objects.append(gke_critical_pods_quota())
    else:
        if not gke_manages_device_plugin(blueprint):
            layer.releases.append(Release("nvidia-device-plugin", catalog.NVIDIA_DEVICE_PLUGIN, NAMESPACE,
                                          device_plugin_values(blueprint)))
        if blueprint.gpu_stack.dcgm_exporter:
            layer.releases.append(Release("dcgm-exporter", catalog.DCGM_EXPORTER, NAMESPACE,
                                          dcgm_exporter_values(blueprint)))
    return layer
