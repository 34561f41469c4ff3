"""Object builders and the security defaults every rendered workload shares."""

from __future__ import annotations

from typing import Any

from shipway import catalog
from shipway.catalog import PROMETHEUS_RELEASE
from shipway.spec.blueprint import Blueprint, EksCluster, GkeCluster

Obj = dict[str, Any]

MANAGED_BY = {"app.kubernetes.io/managed-by": "shipway"}

# Pod Security "restricted" for every container Shipway itself emits.
RESTRICTED_CONTAINER_SECURITY: Obj = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_POD_SECURITY: Obj = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "fsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _copy(value: Any) -> Any:
    # Containers are copied; leaves are shared, since they may be Pulumi outputs, which cannot be copied.
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def deep_merge(base: Obj, override: Obj) -> Obj:
    """Merge override into a copy of base: mappings merge key by key, anything else replaces."""
    merged = _copy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = _copy(value)
    return merged


def metadata(name: str, namespace: str | None = None, labels: dict[str, str] | None = None,
             annotations: dict[str, str] | None = None) -> Obj:
    """Object metadata with Shipway's managed-by label."""
    meta: Obj = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = {**MANAGED_BY, **(labels or {})}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


# The namespaces that enforce less than Pod Security `restricted`, and why: the one list of exceptions.
# The whole-platform pod-security check renders every chart and fails on a pod its namespace's level
# refuses, and on a level here that no pod in that namespace needs.
POD_SECURITY_EXCEPTIONS: dict[str, tuple[str, str]] = {
    "gpu-operator": ("privileged", "the GPU stack: the device plugin, DCGM exporter, container toolkit and node "
                                   "feature discovery mount host paths, and some run privileged or add SYS_ADMIN"),
    "node-exporter": ("privileged", "node-exporter reads the host's /proc, /sys and / through hostPath, "
                                    "with hostNetwork and hostPID"),
    "shipway-cache": ("privileged", "the node model cache's CSI plugin owns a hostPath folder on each node and "
                                    "bind-mounts models into pods' volumes under the kubelet's pods folder with "
                                    "Bidirectional mount propagation, which needs a privileged container; its "
                                    "node-driver-registrar sidecar writes to the kubelet's plugins_registry "
                                    "host folder, with no capabilities"),
}


def namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    """A Namespace enforcing Pod Security `restricted`, or the level POD_SECURITY_EXCEPTIONS gives it."""
    level = POD_SECURITY_EXCEPTIONS.get(name, ("restricted", ""))[0]
    pod_security = {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": level,
        "pod-security.kubernetes.io/warn": level,
    }
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": metadata(name, labels={**pod_security, **(labels or {})})}


def config_map(name: str, namespace_name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> Obj:
    """A ConfigMap."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(name, namespace_name, labels),
            "data": dict(sorted(data.items()))}


def object_key(obj: Obj) -> str:
    """A stable, unique, file-system-safe key for an object: kind, namespace, name."""
    meta = obj.get("metadata", {})
    parts = [obj["kind"].lower(), meta.get("namespace", "_cluster"), meta["name"]]
    return "--".join(part.replace(".", "-").replace(":", "-") for part in parts)


def service_monitor(name: str, namespace_name: str, selector: dict[str, str], port: str,
                    path: str = "/metrics", interval: str = "15s") -> Obj:
    """A ServiceMonitor carrying the Prometheus stack's release label, for charts that cannot label their own."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(name, namespace_name, {"release": PROMETHEUS_RELEASE}),
        "spec": {
            "selector": {"matchLabels": dict(selector)},
            "namespaceSelector": {"matchNames": [namespace_name]},
            "endpoints": [{"port": port, "path": path, "interval": interval}],
        },
    }


def shipway_image(blueprint: Blueprint) -> str:
    """The Shipway image platform workloads run: the blueprint's (a mirror's copy), else this Shipway's release."""
    return blueprint.platform.images.shipway or catalog.SHIPWAY_IMAGE


def critical_pods_quota(namespace_name: str, name: str, pods: int) -> Obj:
    """GKE admits system-node-critical pods outside kube-system only under a quota that names them."""
    return {
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": name, "namespace": namespace_name, "labels": {"app.kubernetes.io/managed-by": "shipway"}},
        "spec": {"hard": {"pods": str(pods)}, "scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In",
             "values": ["system-node-critical", "system-cluster-critical"]}]}},
    }


# The API server listens on 443 (EKS, GKE, the `kubernetes` Service) or 6443 (kind and kubeadm endpoints).
KUBE_API_PORTS = (443, 6443)


def api_server_cidrs(blueprint: Blueprint) -> list[str]:
    """The networks the Kubernetes API server's addresses are in, as pods see them.

    EKS: the control plane's ENIs sit in the cluster's subnets, so the VPC's range, and the `kubernetes` Service's
    ClusterIP, because the VPC CNI's network policy agent judges a pod's packets before kube-proxy translates the
    ClusterIP to those ENIs. GKE: the private cluster's control-plane /28; Dataplane V2 (Cilium) translates the
    ClusterIP before it applies policy. kind and existing clusters: what the blueprint says (the RFC 1918 ranges by
    default).
    """
    cluster = blueprint.cluster
    if isinstance(cluster, EksCluster):
        return [cluster.network.vpc_cidr, f"{cluster.network.kubernetes_service_ip}/32"]
    if isinstance(cluster, GkeCluster):
        return [cluster.master_cidr]
    return list(cluster.api_server_cidrs)


def kube_api_egress(blueprint: Blueprint) -> Obj:
    """A NetworkPolicy egress rule to the Kubernetes API server and nowhere else: the API server is not a pod,
    so it is named by address."""
    return {"to": [{"ipBlock": {"cidr": cidr}} for cidr in api_server_cidrs(blueprint)],
            "ports": [{"protocol": "TCP", "port": port} for port in KUBE_API_PORTS]}
