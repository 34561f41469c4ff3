"""Who an object is once applied: its API group, kind, namespace and name, as the API server keys it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

# Kinds of the built-in API that live outside namespaces (kubectl api-resources --namespaced=false, 1.31).
CLUSTER_SCOPED_CORE = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding", "ComponentStatus",
    "CSIDriver", "CSINode", "CustomResourceDefinition", "FlowSchema", "IngressClass",
    "MutatingWebhookConfiguration", "Namespace", "Node", "NodePatch", "PersistentVolume",
    "PriorityClass", "PriorityLevelConfiguration", "RuntimeClass", "StorageClass",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration",
    "VolumeAttachment", "DeviceClass", "ResourceSlice", "VolumeAttributesClass",
})


def group_of(api_version: str) -> str:
    """The API group of an apiVersion ("" for the core group)."""
    return api_version.rpartition("/")[0]


def crd_scopes(crds: Iterable[Obj]) -> dict[tuple[str, str], str]:
    """(group, kind) -> "Namespaced" or "Cluster", from CustomResourceDefinitions."""
    scopes = {}
    for crd in crds:
        if crd.get("kind") == "CustomResourceDefinition":
            spec = crd.get("spec") or {}
            scopes[(spec.get("group", ""), (spec.get("names") or {}).get("kind", ""))] = spec.get("scope", "Namespaced")
    return scopes


@dataclass(frozen=True, order=True)
class Identity:
    """An object as the API server keys it (version aside: one object is served under every version)."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind} {self.namespace}/{self.name}" if self.namespace else f"{kind} {self.name}"


def namespaced(obj: Obj, scopes: dict[tuple[str, str], str]) -> bool:
    """Whether the object lives in a namespace."""
    group = group_of(str(obj.get("apiVersion", "")))
    scope = scopes.get((group, str(obj.get("kind"))))
    if scope is not None:
        return scope == "Namespaced"
    return obj.get("kind") not in CLUSTER_SCOPED_CORE


def identity(obj: Obj, default_namespace: str, scopes: dict[tuple[str, str], str]) -> Identity:
    """The object's identity once applied into `default_namespace` (Helm's namespace for objects naming none)."""
    meta = obj.get("metadata") or {}
    namespace = (meta.get("namespace") or default_namespace) if namespaced(obj, scopes) else ""
    return Identity(group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind")), namespace, str(meta.get("name")))
