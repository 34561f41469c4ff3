"""Live evidence: what a running cluster shows, read through a small interface a fake can stand in for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shipway.readiness.model import Finding, Status, failed, passed
from shipway.render import gitops, gpu, observability, registry, serving
from shipway.spec.blueprint import GPU_RESOURCE, Blueprint, ZotRegistry

# Seconds to connect and to read; an unreachable API server must not stall the report.
REQUEST_TIMEOUT = (5, 15)


class ClusterUnavailable(Exception):
    """The cluster could not be asked: no such context, unreachable, or access refused."""


@dataclass(frozen=True)
class Workload:
    """A Deployment, StatefulSet or DaemonSet and whether all its replicas are ready."""

    kind: str
    name: str
    ready: int
    desired: int

    @property
    def is_ready(self) -> bool:
        """Whether every desired replica is ready (a scaled-to-zero workload counts as ready)."""
        return self.ready >= self.desired


class ClusterReader(Protocol):
    """The few questions the readiness checks ask a cluster; each raises ClusterUnavailable if it cannot answer."""

    @property
    def name(self) -> str:
        """How the cluster is named in evidence, e.g. its kube context."""

    def namespaces(self) -> set[str]:
        """Every namespace's name."""

    def crd_names(self) -> set[str]:
        """Every CustomResourceDefinition's name, e.g. rollouts.argoproj.io."""

    def workloads(self, namespace: str) -> list[Workload]:
        """The namespace's Deployments, StatefulSets and DaemonSets."""

    def custom_object_names(self, group: str, version: str, plural: str, namespace: str | None) -> set[str]:
        """Names of custom objects of a kind, cluster-wide when namespace is None; empty when the CRD is absent."""

    def gpu_allocatable(self) -> dict[str, int]:
        """Nodes that advertise nvidia.com/gpu, with how many each can allocate."""

    def resource_quota_hard(self, namespace: str) -> list[dict[str, str]]:
        """The hard limits of each ResourceQuota in the namespace."""

    def network_policy_names(self, namespace: str) -> set[str]:
        """Names of the NetworkPolicies in the namespace."""


class KubeCluster:
    """A ClusterReader over the kubernetes Python client and one kubeconfig context."""

    def __init__(self, context: str, kubeconfig: Path | None = None) -> None:
        self.context = context
        self.kubeconfig = kubeconfig
        self._client: Any = None

    @property
    def name(self) -> str:
        """The kube context."""
        return self.context

    def _api(self) -> Any:
        if self._client is None:
            from kubernetes import client, config
            from kubernetes.config.config_exception import ConfigException

            configuration = client.Configuration()
            try:
                config.load_kube_config(config_file=str(self.kubeconfig) if self.kubeconfig else None,
                                        context=self.context, client_configuration=configuration,
                                        persist_config=False)
            except (ConfigException, OSError) as error:
                raise ClusterUnavailable(f"kube context {self.context!r} cannot be loaded: {error}") from None
            # The default retries triple the wait on an unreachable server.
            configuration.retries = 0
            self._client = client.ApiClient(configuration)
        return self._client

    def _call(self, api_class: str, method: str, *args: Any, **kwargs: Any) -> Any:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        api = getattr(client, api_class)(self._api())
        try:
            return getattr(api, method)(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except ApiException as error:
            raise ClusterUnavailable(f"{method} answered {error.status} {error.reason}") from None
        except (HTTPError, OSError) as error:
            raise ClusterUnavailable(f"the API server of context {self.context!r} is unreachable: "
                                     f"{type(error).__name__}") from None

    def namespaces(self) -> set[str]:
        """Every namespace's name."""
        return {item.metadata.name for item in self._call("CoreV1Api", "list_namespace").items}

    def crd_names(self) -> set[str]:
        """Every CustomResourceDefinition's name."""
        return {item.metadata.name
                for item in self._call("ApiextensionsV1Api", "list_custom_resource_definition").items}

    def workloads(self, namespace: str) -> list[Workload]:
        """The namespace's Deployments, StatefulSets and DaemonSets."""
        found = []
        for item in self._call("AppsV1Api", "list_namespaced_deployment", namespace).items:
            found.append(Workload("Deployment", item.metadata.name, item.status.ready_replicas or 0,
                                  item.spec.replicas if item.spec.replicas is not None else 1))
        for item in self._call("AppsV1Api", "list_namespaced_stateful_set", namespace).items:
            found.append(Workload("StatefulSet", item.metadata.name, item.status.ready_replicas or 0,
                                  item.spec.replicas if item.spec.replicas is not None else 1))
        for item in self._call("AppsV1Api", "list_namespaced_daemon_set", namespace).items:
            found.append(Workload("DaemonSet", item.metadata.name, item.status.number_ready or 0,
                                  item.status.desired_number_scheduled or 0))
        return found

    def custom_object_names(self, group: str, version: str, plural: str, namespace: str | None) -> set[str]:
        """Names of custom objects of a kind; empty when the CRD is absent."""
        if f"{plural}.{group}" not in self.crd_names():
            return set()
        if namespace is None:
            listing = self._call("CustomObjectsApi", "list_cluster_custom_object", group, version, plural)
        else:
            listing = self._call("CustomObjectsApi", "list_namespaced_custom_object", group, version, namespace,
                                 plural)
        return {item["metadata"]["name"] for item in listing.get("items", [])}

    def gpu_allocatable(self) -> dict[str, int]:
        """Nodes that advertise nvidia.com/gpu, with how many each can allocate."""
        found = {}
        for node in self._call("CoreV1Api", "list_node").items:
            count = int((node.status.allocatable or {}).get(GPU_RESOURCE, "0"))
            if count:
                found[node.metadata.name] = count
        return found

    def resource_quota_hard(self, namespace: str) -> list[dict[str, str]]:
        """The hard limits of each ResourceQuota in the namespace."""
        return [dict(item.spec.hard or {})
                for item in self._call("CoreV1Api", "list_namespaced_resource_quota", namespace).items]

    def network_policy_names(self, namespace: str) -> set[str]:
        """Names of the NetworkPolicies in the namespace."""
        return {item.metadata.name
                for item in self._call("NetworkingV1Api", "list_namespaced_network_policy", namespace).items}


ClusterEvaluator = Callable[[ClusterReader, Blueprint], Finding | None]

DEFAULT_DENY_POLICY = "default-deny"


def _missing_crds(cluster: ClusterReader, wanted: tuple[str, ...]) -> list[str]:
    present = cluster.crd_names()
    return [name for name in wanted if name not in present]


def _workloads_ready(cluster: ClusterReader, namespace: str, what: str) -> Finding:
    workloads = cluster.workloads(namespace)
    if not workloads:
        return failed(f"no {what} workloads in namespace {namespace}")
    unready = [f"{w.kind} {w.name} {w.ready}/{w.desired}" for w in workloads if not w.is_ready]
    if unready:
        return failed(f"{what} in {namespace} not ready: {', '.join(unready)}")
    return passed(f"{len(workloads)} {what} workloads ready in {namespace}")


def _and(*findings: Finding) -> Finding:
    """The first finding that is not a pass, else every pass's evidence joined."""
    for finding in findings:
        if finding.status is not Status.PASS:
            return finding
    return passed("; ".join(finding.evidence for finding in findings))


def _crds(cluster: ClusterReader, wanted: tuple[str, ...]) -> Finding:
    missing = _missing_crds(cluster, wanted)
    if missing:
        return failed(f"CRDs missing: {', '.join(missing)}")
    return passed(f"CRDs {', '.join(wanted)} present")


def _gitops_sync(cluster: ClusterReader, blueprint: Blueprint) -> Finding:
    crds = _crds(cluster, ("applications.argoproj.io", "applicationsets.argoproj.io"))
    if crds.status is not Status.PASS:
        return crds
    sets = cluster.custom_object_names("argoproj.io", "v1alpha1", "applicationsets", gitops.NAMESPACE)
    appset = (passed(f"ApplicationSet {gitops.APPLICATION_SET} live") if gitops.APPLICATION_SET in sets
              else failed(f"no ApplicationSet {gitops.APPLICATION_SET} in {gitops.NAMESPACE}"))
    return _and(crds, _workloads_ready(cluster, gitops.NAMESPACE, "Argo CD"), appset)


def _gpu_pools(cluster: ClusterReader, blueprint: Blueprint) -> Finding:
    nodes = cluster.gpu_allocatable()
    if not nodes:
        return failed(f"no node advertises allocatable {GPU_RESOURCE}")
    listed = ", ".join(f"{name} {count}" for name, count in sorted(nodes.items()))
    return passed(f"{len(nodes)} node(s) advertise {sum(nodes.values())} {GPU_RESOURCE}: {listed}")


def _gpu_device_stack(cluster: ClusterReader, blueprint: Blueprint) -> Finding:
    return _workloads_ready(cluster, gpu.NAMESPACE, "GPU stack")


def _team_namespaces(blueprint: Blueprint) -> list[str]:
    return [ns for team in blueprint.namespaces.values() for ns in team.values()]


def _gpu_quotas(cluster: ClusterReader, blueprint: Blueprint) -> Finding:
    wanted = _team_namespaces(blueprint)
    if not wanted:
        return failed("the blueprint names no team namespaces to look in")
    present = cluster.namespaces()
    uncapped = []
    for ns in wanted:
        hard = cluster.resource_quota_hard(ns) if ns in present else []
        if not any(f"requests.{GPU_RESOURCE}" in limits for limits in hard):
            uncapped.append(ns if ns in present else f"{ns} (absent)")
    if uncapped:
        return failed(f"no requests.{GPU_RESOURCE} quota in: {', '.join(uncapped)}")
    return passed(f"requests.{GPU_RESOURCE} quota live in {len(wanted)} team namespaces")


def _artifacts_registry(cluster: ClusterReader, blueprint: Blueprint) -> Finding | None:
    if not isinstance(blueprint.registry, ZotRegistry):
        return None
    return _workloads_ready(cluster, registry.NAMESPACE, "zot")


def _observability_model_slos(cluster: ClusterReader, blueprint: Blueprint) -> Finding:
    crds = _crds(cluster, ("prometheusrules.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com"))
    if crds.status is not Status.PASS:
        return crds
    rules = cluster.custom_object_names("monitoring.coreos.com", "v1", "prometheusrules", observability.NAMESPACE)
    wanted = ("shipway-platform", "shipway-model-slo")
    missing = [name for name in wanted if name not in rules]
    loaded = (failed(f"PrometheusRules missing in {observability.NAMESPACE}: {', '.join(missing)}") if missing
              else passed(f"PrometheusRules {', '.join(wanted)} loaded"))
    return _and(crds, loaded, _workloads_ready(cluster, observability.NAMESPACE, "monitoring"))


def _breakers_analysis(cluster: ClusterReader, blueprint: Blueprint) -> Finding:
    crds = _crds(cluster, ("clusteranalysistemplates.argoproj.io", "analysisruns.argoproj.io"))
    if crds.status is not Status.PASS:
        return crds
    live = cluster.custom_object_names("argoproj.io", "v1alpha1", "clusteranalysistemplates", None)
    wanted = sorted(serving.ANALYSIS_TEMPLATES.values())
    missing = [name for name in wanted if name not in live]
    if missing:
        return failed(f"ClusterAnalysisTemplates missing: {', '.join(missing)}")
    return passed(f"ClusterAnalysisTemplates {', '.join(wanted)} live")


def _rollouts_progressive(cluster: ClusterReader, blueprint: Blueprint) -> Finding:
    crds = _crds(cluster, ("rollouts.argoproj.io",))
    if crds.status is not Status.PASS:
        return crds
    return _and(crds, _workloads_ready(cluster, serving.NAMESPACE, "Argo Rollouts"))


def _tenancy_namespaces(cluster: ClusterReader, blueprint: Blueprint) -> Finding:
    wanted = _team_namespaces(blueprint)
    if not wanted:
        return failed("the blueprint names no team namespaces to look in")
    present = cluster.namespaces()
    problems = []
    for ns in wanted:
        if ns not in present:
            problems.append(f"{ns} absent")
            continue
        if DEFAULT_DENY_POLICY not in cluster.network_policy_names(ns):
            problems.append(f"{ns} has no {DEFAULT_DENY_POLICY} NetworkPolicy")
        if not cluster.resource_quota_hard(ns):
            problems.append(f"{ns} has no ResourceQuota")
    if problems:
        return failed("; ".join(problems))
    return passed(f"{len(wanted)} team namespaces live, each with a ResourceQuota and {DEFAULT_DENY_POLICY}")


EVALUATORS: dict[str, ClusterEvaluator] = {
    "gitops-sync": _gitops_sync,
    "gpu-pools": _gpu_pools,
    "gpu-device-stack": _gpu_device_stack,
    "gpu-quotas": _gpu_quotas,
    "artifacts-registry": _artifacts_registry,
    "observability-model-slos": _observability_model_slos,
    "breakers-analysis": _breakers_analysis,
    "rollouts-progressive": _rollouts_progressive,
    "tenancy-namespaces": _tenancy_namespaces,
}
