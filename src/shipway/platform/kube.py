"""Turning rendered objects (plain dicts) into pulumi-kubernetes resources."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from shipway.render.common import Obj, object_key
from shipway.render.layer import LayerRender, Release

_TYPED = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("v1", "Secret"): k8s.core.v1.Secret,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("v1", "ResourceQuota"): k8s.core.v1.ResourceQuota,
    ("v1", "LimitRange"): k8s.core.v1.LimitRange,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("networking.k8s.io/v1", "NetworkPolicy"): k8s.networking.v1.NetworkPolicy,
    ("rbac.authorization.k8s.io/v1", "Role"): k8s.rbac.v1.Role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): k8s.rbac.v1.RoleBinding,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): k8s.rbac.v1.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): k8s.rbac.v1.ClusterRoleBinding,
    ("scheduling.k8s.io/v1", "PriorityClass"): k8s.scheduling.v1.PriorityClass,
    ("policy/v1", "PodDisruptionBudget"): k8s.policy.v1.PodDisruptionBudget,
    ("v1", "NodePatch"): k8s.core.v1.NodePatch,
    ("storage.k8s.io/v1", "StorageClass"): k8s.storage.v1.StorageClass,
    ("storage.k8s.io/v1", "CSIDriver"): k8s.storage.v1.CSIDriver,
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def create_object(name: str, obj: Obj, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """A typed pulumi-kubernetes resource for core kinds, a CustomResource for custom kinds."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    fields = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind")}
    typed = _TYPED.get((api_version, kind))
    if typed is not None:
        return typed(name, opts=opts, **{_snake(key): value for key, value in fields.items()})
    return k8s.apiextensions.CustomResource(name, api_version=api_version, kind=kind, opts=opts, **fields)


def create_release(name: str, release: Release, opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
    """A Helm release of a catalog chart."""
    chart = release.chart
    return k8s.helm.v3.Release(
        name,
        k8s.helm.v3.ReleaseArgs(
            name=release.name,
            chart=chart.ref,
            version=chart.version,
            repository_opts=None if chart.is_oci else k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
            namespace=release.namespace,
            create_namespace=False,
            values=release.values,
            skip_crds=release.skip_crds or None,
            atomic=True,
            cleanup_on_fail=True,
            timeout=900,
        ),
        opts=opts,
    )


def upstream(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    """The layers a component was told to wait for; its children must wait for them too."""
    if opts is None or opts.depends_on is None:
        return []
    depends_on = opts.depends_on
    return list(depends_on) if isinstance(depends_on, Sequence) else [depends_on]  # type: ignore[list-item]


def apply_layer(owner: pulumi.ComponentResource, prefix: str, layer: LayerRender,
                depends_on: Sequence[pulumi.Resource] = ()) -> list[pulumi.Resource]:
    """Create a layer's namespaces, then its releases, then its objects.

    Pulumi does not make a component's children wait for what the component depends on, so the
    first children of a layer (namespaces, and cluster-scoped objects) carry the layer's upstream
    dependencies. Each release waits for its namespace and the layer's earlier releases, whose CRDs
    and webhooks it may need (KServe needs cert-manager and its CRD chart installed first); each
    object for its own namespace and the layer's releases. Depending on every namespace instead
    would make the graph quadratic in the number of teams.
    """
    created: list[pulumi.Resource] = []
    namespaces: dict[str, pulumi.Resource] = {}
    for ns in layer.namespaces:
        name = ns["metadata"]["name"]
        namespaces[name] = create_object(f"{prefix}-ns-{name}", ns,
                                         pulumi.ResourceOptions(parent=owner, depends_on=list(depends_on)))
    created += namespaces.values()

    def home(namespace: str | None) -> list[pulumi.Resource]:
        found = namespaces.get(namespace or "")
        return [found] if found is not None else list(depends_on)

    releases: list[pulumi.Resource] = []
    for release in layer.releases:
        releases.append(create_release(f"{prefix}-{release.name}", release, pulumi.ResourceOptions(
            parent=owner, depends_on=[*home(release.namespace), *releases])))
    created += releases
    for obj in layer.objects:
        needs = [*home(obj["metadata"].get("namespace")), *releases]
        created.append(create_object(f"{prefix}-{object_key(obj)}", obj,
                                     pulumi.ResourceOptions(parent=owner, depends_on=needs)))
    return created
