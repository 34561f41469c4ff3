"""Object builders and the security defaults every rendered workload shares."""

from __future__ import annotations

from typing import Any

from shipway.catalog import PROMETHEUS_RELEASE

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


def namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    """A Namespace enforcing Pod Security `restricted` unless labels say otherwise."""
    pod_security = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": metadata(name, labels={**pod_security, **(labels or {})})}


def platform_namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    """A Namespace for third-party platform charts: enforce baseline, warn and audit on restricted.

    Upstream charts do not all set every restricted field, so enforcing restricted there
    would block their pods; team namespaces, where models run, enforce restricted.
    """
    return namespace(name, {"pod-security.kubernetes.io/enforce": "baseline", **(labels or {})})


def privileged_namespace(name: str, labels: dict[str, str] | None = None) -> Obj:
    """A Namespace for node agents (GPU drivers, device plugins) that need host access."""
    return namespace(name, {"pod-security.kubernetes.io/enforce": "privileged",
                            "pod-security.kubernetes.io/audit": "privileged",
                            "pod-security.kubernetes.io/warn": "privileged", **(labels or {})})


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
