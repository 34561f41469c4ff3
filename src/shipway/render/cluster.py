"""The cluster layer's pure parts: the kind config, and node pool settings for EKS and GKE."""

from __future__ import annotations

import math

import yaml

from shipway import catalog
from shipway.render import gateway, gpu, registry
from shipway.render.common import Obj
from shipway.spec.blueprint import Blueprint, EksCluster, GkeCluster, KindCluster, NodePool, Taint, TimeSlicing
from shipway.spec.gpus import GPU_MODELS

MIRROR_HOST = "localhost:5001"
GKE_NO_DEFAULT_DEVICE_PLUGIN = "gke-no-default-nvidia-gpu-device-plugin"


def kind_cluster_name(blueprint: Blueprint) -> str:
    """The kind cluster's name."""
    cluster = blueprint.cluster
    return (cluster.name if isinstance(cluster, KindCluster) and cluster.name else blueprint.metadata.name)


def kube_context(blueprint: Blueprint) -> str | None:
    """The kubeconfig context the platform deploys into, for kind and existing clusters."""
    cluster = blueprint.cluster
    if isinstance(cluster, KindCluster):
        return cluster.context or f"kind-{kind_cluster_name(blueprint)}"
    if cluster.kind == "existing":
        return cluster.context
    return None


def cluster_facts(blueprint: Blueprint) -> dict[str, str]:
    """The names a workflow or script shares with the stack: cluster, kubeconfig context, images.

    One source of truth: `kind-config`, the Pulumi program and the smoke workflow all take these from
    the blueprint, so a workflow never hard-codes a name the stack does not use.
    """
    from shipway.render.profile import platform_profile

    cluster = blueprint.cluster
    facts = {"platform": blueprint.metadata.name, "cluster_kind": cluster.kind}
    if isinstance(cluster, KindCluster):
        facts |= {"cluster_name": kind_cluster_name(blueprint), "kind_version": catalog.KIND_VERSION,
                  "node_image": catalog.KIND_NODE_IMAGE}
    context = kube_context(blueprint)
    if context is not None:
        facts["kube_context"] = context
    facts["shipway_image"] = platform_profile(blueprint)["images"]["shipway"]
    return facts


def pool_labels(blueprint: Blueprint, pool: NodePool) -> dict[str, str]:
    """Every label a pool's nodes get, the GPU stack's included."""
    return {**pool.node_labels, **gpu.pool_node_labels(blueprint).get(pool.name, {})}


def _kubelet_patch(labels: dict[str, str], taints: list[Taint]) -> str:
    registration: Obj = {"kubeletExtraArgs": {"node-labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))}}
    if taints:
        registration["taints"] = [{"key": t.key, "value": t.value, "effect": t.effect} for t in taints]
    return yaml.safe_dump({"kind": "JoinConfiguration", "nodeRegistration": registration}, sort_keys=True)


def kind_config(blueprint: Blueprint) -> Obj:
    """The kind cluster config: a control plane mapping the Gateway's ports to 127.0.0.1, one worker per pool.

    The Envoy proxies' Service is a NodePort (gateway.KIND_NODE_PORTS), which every node answers on, so
    mapping those ports of the control-plane node reaches the Gateway wherever its pods run.
    """
    cluster = blueprint.cluster
    if not isinstance(cluster, KindCluster):
        raise ValueError(f"kind-config needs a kind cluster, the blueprint has {cluster.kind}")
    control_plane: Obj = {
        "role": "control-plane",
        "image": catalog.KIND_NODE_IMAGE,
        "extraPortMappings": [
            {"containerPort": gateway.KIND_NODE_PORTS[port], "hostPort": host_port, "listenAddress": "127.0.0.1",
             "protocol": "TCP"}
            for port, host_port in ((gateway.HTTP_PORT, cluster.http_port), (gateway.HTTPS_PORT, cluster.https_port))
        ],
    }
    workers = [{"role": "worker", "image": catalog.KIND_NODE_IMAGE,
                "labels": dict(sorted(pool_labels(blueprint, pool).items())),
                "kubeadmConfigPatches": [_kubelet_patch(pool_labels(blueprint, pool), pool.effective_taints)]}
               for pool in blueprint.node_pools]
    if not any(pool.effective_role != "gpu" and not pool.effective_taints for pool in blueprint.node_pools):
        # Platform components need an untainted node; kind's control plane takes none, so add one.
        workers.insert(0, {"role": "worker", "image": catalog.KIND_NODE_IMAGE,
                           "labels": {"shipway.dev/pool": "system"},
                           "kubeadmConfigPatches": [_kubelet_patch({"shipway.dev/pool": "system"}, [])]})
    # Nodes pull images pushed to localhost:5001 from the in-cluster zot through its NodePort.
    containerd = (
        f'[plugins."io.containerd.grpc.v1.cri".registry.mirrors."{MIRROR_HOST}"]\n'
        f'  endpoint = ["http://localhost:{registry.KIND_NODE_PORT}"]\n'
    )
    return {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha4",
        "name": kind_cluster_name(blueprint),
        "containerdConfigPatches": [containerd],
        "nodes": [control_plane, *workers],
    }


def eks_node_group(blueprint: Blueprint, pool: NodePool) -> Obj:
    """Settings for one EKS managed node group, NVIDIA AMI for GPU pools."""
    assert isinstance(blueprint.cluster, EksCluster)
    labels = pool_labels(blueprint, pool)
    return {
        "node_group_name": f"{blueprint.metadata.name}-{pool.name}",
        "instance_types": [pool.instance_type],
        "ami_type": "AL2023_x86_64_NVIDIA" if pool.is_gpu else "AL2023_x86_64_STANDARD",
        "capacity_type": "SPOT" if pool.spot else "ON_DEMAND",
        "disk_size": pool.disk_size_gib,
        "scaling_config": {"min_size": pool.min_size, "max_size": pool.max_size,
                           "desired_size": pool.effective_desired_size},
        "labels": dict(sorted(labels.items())),
        "taints": [{"key": t.key, "value": t.value or None, "effect": _eks_effect(t.effect)}
                   for t in pool.effective_taints],
    }


def _eks_effect(effect: str) -> str:
    return {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}[effect]


def gke_node_pool(blueprint: Blueprint, pool: NodePool) -> Obj:
    """Settings for one GKE node pool, with guest accelerators for GPU pools."""
    assert isinstance(blueprint.cluster, GkeCluster)
    config: Obj = {
        "machine_type": pool.instance_type,
        "disk_size_gb": pool.disk_size_gib,
        "spot": pool.spot,
        "labels": dict(sorted(pool_labels(blueprint, pool).items())),
        "taints": [{"key": t.key, "value": t.value, "effect": _eks_effect(t.effect)} for t in pool.effective_taints],
        "workload_metadata_config": {"mode": "GKE_METADATA"},
        "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
        "oauth_scopes": ["https://www.googleapis.com/auth/cloud-platform"],
    }
    if pool.gpu is not None:
        # GKE installs the driver unless the GPU Operator is told to.
        driver = "INSTALLATION_DISABLED" if (blueprint.gpu_stack.mode == "operator"
                                             and blueprint.gpu_stack.install_driver) else "DEFAULT"
        accelerator: Obj = {"type": GPU_MODELS[pool.gpu.model].gke_accelerator, "count": pool.gpu.count,
                            "gpu_driver_installation_config": {"gpu_driver_version": driver}}
        sharing = blueprint.gpu_stack.sharing
        if blueprint.gpu_stack.mode == "operator":
            # The operator's device plugin advertises GPUs; GKE's would do so a second time.
            config["labels"] = {**config["labels"], GKE_NO_DEFAULT_DEVICE_PLUGIN: "true"}
        elif isinstance(sharing, TimeSlicing):
            # Without the operator GKE's managed plugin serves GPUs, and it time-shares them itself.
            accelerator["gpu_sharing_config"] = {"gpu_sharing_strategy": "TIME_SHARING",
                                                 "max_shared_clients_per_gpu": sharing.replicas}
        config["guest_accelerators"] = [accelerator]
    zones = blueprint.pool_zones(pool)
    return {
        "name": pool.name,
        "node_locations": zones,
        # GKE sizes a regional pool per zone; the blueprint's sizes are totals, as its quota rules count them.
        "autoscaling": {"total_min_node_count": pool.min_size, "total_max_node_count": pool.max_size,
                        "location_policy": "ANY" if pool.spot else "BALANCED"},
        "initial_node_count": math.ceil(pool.effective_desired_size / len(zones)),
        "node_config": config,
        "management": {"auto_repair": True, "auto_upgrade": True},
    }


def gke_nat_settings() -> Obj:
    """Cloud NAT for every subnet range of the region, with addresses Google allocates; errors are logged."""
    return {
        "nat_ip_allocate_option": "AUTO_ONLY",
        "source_subnetwork_ip_ranges_to_nat": "ALL_SUBNETWORKS_ALL_IP_RANGES",
        "log_config": {"enable": True, "filter": "ERRORS_ONLY"},
    }
