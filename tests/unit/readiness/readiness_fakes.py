"""A fake ClusterReader for the readiness checks, and a healthy one built from what a blueprint renders."""

from __future__ import annotations

from dataclasses import dataclass, field

from shipway.readiness import ClusterUnavailable, Workload
from shipway.render import gitops, gpu, observability, registry, serving, tenancy
from shipway.spec.blueprint import Blueprint

PLATFORM_CRDS = {
    "applications.argoproj.io", "applicationsets.argoproj.io", "appprojects.argoproj.io",
    "rollouts.argoproj.io", "analysisruns.argoproj.io", "analysistemplates.argoproj.io",
    "clusteranalysistemplates.argoproj.io", "prometheusrules.monitoring.coreos.com",
    "servicemonitors.monitoring.coreos.com",
}


@dataclass
class FakeCluster:
    """A ClusterReader answering from plain data; `unavailable` names methods that raise."""

    name: str = "fake"
    namespace_names: set[str] = field(default_factory=set)
    crds: set[str] = field(default_factory=set)
    workload_map: dict[str, list[Workload]] = field(default_factory=dict)
    objects: dict[tuple[str, str | None], set[str]] = field(default_factory=dict)
    gpus: dict[str, int] = field(default_factory=dict)
    quotas: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    policies: dict[str, set[str]] = field(default_factory=dict)
    unavailable: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def _ask(self, method: str) -> None:
        self.calls.append(method)
        if method in self.unavailable or "*" in self.unavailable:
            raise ClusterUnavailable(f"{method}: connection refused")

    def namespaces(self) -> set[str]:
        self._ask("namespaces")
        return set(self.namespace_names)

    def crd_names(self) -> set[str]:
        self._ask("crd_names")
        return set(self.crds)

    def workloads(self, namespace: str) -> list[Workload]:
        self._ask("workloads")
        return list(self.workload_map.get(namespace, []))

    def custom_object_names(self, group: str, version: str, plural: str, namespace: str | None) -> set[str]:
        self._ask("custom_object_names")
        return set(self.objects.get((plural, namespace), set()))

    def gpu_allocatable(self) -> dict[str, int]:
        self._ask("gpu_allocatable")
        return dict(self.gpus)

    def resource_quota_hard(self, namespace: str) -> list[dict[str, str]]:
        self._ask("resource_quota_hard")
        return list(self.quotas.get(namespace, []))

    def network_policy_names(self, namespace: str) -> set[str]:
        self._ask("network_policy_names")
        return set(self.policies.get(namespace, set()))


def healthy_cluster(blueprint: Blueprint) -> FakeCluster:
    """The cluster `pulumi up` of this blueprint leaves behind: every object its layers render, all ready."""
    ready = [Workload("Deployment", "controller", 1, 1), Workload("DaemonSet", "agent", 2, 2)]
    platform = [gitops.NAMESPACE, gpu.NAMESPACE, registry.NAMESPACE, observability.NAMESPACE, serving.NAMESPACE]
    cluster = FakeCluster(name="kind-healthy", crds=set(PLATFORM_CRDS),
                          workload_map={ns: list(ready) for ns in platform})
    cluster.objects[("applicationsets", gitops.NAMESPACE)] = {gitops.application_set(blueprint)["metadata"]["name"]}
    cluster.objects[("prometheusrules", observability.NAMESPACE)] = {
        obj["metadata"]["name"] for obj in observability.render(blueprint, {}).objects
        if obj["kind"] == "PrometheusRule"}
    cluster.objects[("clusteranalysistemplates", None)] = {
        obj["metadata"]["name"] for obj in serving.analysis_templates(blueprint)}
    cluster.gpus = {f"{pool.name}-worker": pool.gpu.count for pool in blueprint.gpu_pools if pool.gpu}
    rendered = tenancy.render(blueprint)
    cluster.namespace_names = set(platform) | {ns["metadata"]["name"] for ns in rendered.namespaces}
    for obj in rendered.objects:
        ns = obj["metadata"].get("namespace")
        if obj["kind"] == "ResourceQuota":
            cluster.quotas.setdefault(ns, []).append(obj["spec"]["hard"])
        elif obj["kind"] == "NetworkPolicy":
            cluster.policies.setdefault(ns, set()).add(obj["metadata"]["name"])
    return cluster
