"""Tenancy: per team and environment a restricted namespace, quota, limits, network policy and RBAC."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipway.render import gateway, gpu, node_cache, observability, registry, retrain
from shipway.render.common import Obj, kube_api_egress, metadata, namespace
from shipway.render.layer import LayerRender
from shipway.spec.blueprint import (
    GPU_RESOURCE,
    Blueprint,
    ExternalRegistry,
    MigSharing,
    Team,
    TimeSlicing,
    ZotRegistry,
)
from shipway.spec.gpus import GPU_MODELS
from shipway.spec.model import SIDECAR_PORT

SERVING_PRIORITY = "shipway-serving"
BATCH_PRIORITY = "shipway-batch"
TEAM_ROLE = "shipway-model-deployer"
SHARED_GPU_RESOURCE = "nvidia.com/gpu.shared"
# Private, shared-address and link-local ranges (the cloud metadata service among them): pod, service and
# node networks live here, so egress to "outside the cluster" excludes them.
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16")
HTTPS_PORT = 443


def priority_classes() -> list[Obj]:
    """Serving pods preempt batch pods, never the other way round."""
    return [
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": metadata(SERVING_PRIORITY),
         "value": 100000, "globalDefault": False, "preemptionPolicy": "PreemptLowerPriority",
         "description": "Online model serving"},
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": metadata(BATCH_PRIORITY),
         "value": 1000, "globalDefault": False, "preemptionPolicy": "Never",
         "description": "Training, evaluation and batch inference"},
    ]


def gpu_resources(blueprint: Blueprint, team: Team) -> list[str]:
    """Every extended resource a team's pods may request for GPUs on its pools, nvidia.com/gpu first.

    MIG's mixed strategy advertises each slice size as nvidia.com/mig-<slice>, and renamed time-slicing
    advertises nvidia.com/gpu.shared; a quota that names only nvidia.com/gpu would not count either.
    """
    found = [GPU_RESOURCE]
    sharing = blueprint.gpu_stack.sharing
    pools = blueprint.team_gpu_pools(team)
    if isinstance(sharing, TimeSlicing) and sharing.rename_by_default and pools:
        found.append(SHARED_GPU_RESOURCE)
    if isinstance(sharing, MigSharing) and sharing.mig_strategy == "mixed":
        mig_pools = [pool for pool in pools if pool in blueprint.mig_pools() and pool.gpu is not None]
        for pool in mig_pools:
            assert pool.gpu is not None
            profiles = ([p for p in GPU_MODELS[pool.gpu.model].mig_profiles if p != "all-balanced"]
                        if sharing.profile == "all-balanced" else [sharing.profile])
            found += [f"nvidia.com/mig-{p.removeprefix('all-')}" for p in profiles]
    return list(dict.fromkeys(found))


def resource_quota(team: Team, ns: str, gpu_resource_names: list[str] | None = None) -> Obj:
    """The team's quota in one namespace, GPUs included.

    quota.gpus caps each GPU resource the team may request on its own: whole GPUs (nvidia.com/gpu,
    which under MIG's single strategy or un-renamed time-slicing counts slices or shares), and on MIG
    pools under the mixed strategy every slice size (nvidia.com/mig-<slice>), counted in slices, as
    the blueprint counts a MIG pool's capacity. A ResourceQuota cannot cap a sum across resources.
    """
    quota = team.quota
    hard: Obj = {
        "requests.cpu": quota.cpu, "limits.cpu": quota.cpu,
        "requests.memory": quota.memory, "limits.memory": quota.memory,
    }
    hard.update({f"requests.{resource}": str(quota.gpus) for resource in gpu_resource_names or [GPU_RESOURCE]})
    hard.update({"persistentvolumeclaims": "20", "services.loadbalancers": "0", "services.nodeports": "0"})
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": metadata("shipway-quota", ns),
            "spec": {"hard": hard}}


def limit_range(ns: str) -> Obj:
    """Defaults for containers that set no requests or limits, so the quota can admit them."""
    return {
        "apiVersion": "v1", "kind": "LimitRange", "metadata": metadata("shipway-limits", ns),
        "spec": {"limits": [{
            "type": "Container",
            "default": {"cpu": "1", "memory": "1Gi"},
            "defaultRequest": {"cpu": "100m", "memory": "256Mi"},
            "max": {"memory": "512Gi"},
        }]},
    }


def external_registry_port(blueprint: Blueprint) -> int | None:
    """The port model pods reach an external registry on (443 unless its URL names one); None for zot."""
    reg = blueprint.registry
    if not isinstance(reg, ExternalRegistry):
        return None
    host = reg.url.split("/")[0]
    return int(host.rpartition(":")[2]) if ":" in host else HTTPS_PORT


def network_policies(ns: str, registry_port: int | None = None, gateway_on: bool = True) -> list[Obj]:
    """Default deny, then DNS and the registry out, Prometheus and the gateway in, and traffic inside.

    A model pod whose model comes from the node cache's CSI volume calls nothing for it: the kubelet asks the
    node's plugin, which pulls from the registry itself. Registry egress stays for the init container's pull
    (artifacts by tag or elsewhere, or with the cache off).

    The gateway's proxies (in its namespace) reach model servers on the sidecar's serving port only.
    With an external registry (`registry_port` set), the init container's pull also needs egress on that
    port to addresses outside the private ranges; the in-cluster zot is reached through its namespace.
    """
    def policy(name: str, spec: Obj) -> Obj:
        return _policy(name, ns, spec)

    policies = [
        *_base_policies(ns),
        policy("allow-registry", {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [_from_namespace(registry.NAMESPACE)],
                        "ports": [{"protocol": "TCP", "port": registry.SERVICE_PORT}]}],
        }),
    ]
    if gateway_on:
        # Only the serving port: the sidecar's feedback port (labels, which move a canary's fate) is
        # reached from the team's own namespace alone, through allow-same-namespace.
        policies.append(policy("allow-gateway", {
            "podSelector": {"matchLabels": {"app.kubernetes.io/component": "model-server"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [_from_namespace(gateway.NAMESPACE)],
                         "ports": [{"protocol": "TCP", "port": SIDECAR_PORT}]}],
        }))
    if registry_port is not None:
        policies.append(policy("allow-external-registry", {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}],
                        "ports": [{"protocol": "TCP", "port": registry_port}]}],
        }))
    return policies


# Where the API server calls each platform namespace's admission webhooks (container ports).
WEBHOOK_PORTS = {"observability": 10250, "cert-manager": 10250, "kserve": 9443}


@dataclass(frozen=True)
class PlatformFlows:
    """What one platform namespace needs beyond DNS, its own pods and being scraped: every other flow is denied."""

    namespace: str
    kube_api: bool = True
    https_out: bool = False
    ssh_out: bool = False
    http_out: bool = False
    scrape_everything: bool = False
    egress_namespaces: tuple[str, ...] = ()
    egress_to_teams: tuple[int, ...] = ()
    ingress_ports: tuple[int, ...] = ()
    ingress_namespaces: tuple[str, ...] = ()
    ingress_from_teams: bool = False
    ingress_from_anywhere: bool = False
    ingress_from_gateway: bool = True
    webhook_port: int | None = None
    # The registry's port: zot's namespace on it, or an external registry's address outside the private ranges.
    registry_out: int | None = None


# Envoy Gateway runs each listener port below 1024 on container port +10000 (80 -> 10080, 443 -> 10443).
ENVOY_CONTAINER_PORTS = tuple(port + 10000 for port in (gateway.HTTP_PORT, gateway.HTTPS_PORT))
# Envoy Gateway's topology-injector webhook (gateway-helm templates/envoy-proxy-topology-injector-webhook.yaml).
ENVOY_GATEWAY_WEBHOOK_PORT = 9443
TEAM_NAMESPACES = {"namespaceSelector": {"matchExpressions": [{"key": "shipway.dev/team", "operator": "Exists"}]}}


# What in the platform reaches the internet on 443 on purpose: component -> (namespace, why). Everything else
# reaches only the API server's addresses (common.kube_api_egress) and named in-cluster peers, and each of
# these is opened only when the blueprint uses it (platform_flows, render/retrain.py).
INTERNET_HTTPS: dict[str, tuple[str, str]] = {
    "alertmanager": (observability.NAMESPACE, "posts alerts to the receivers (PagerDuty, Slack, webhooks)"),
    "retrain-trigger": (observability.NAMESPACE, "dispatches retraining workflows on the GitHub or GitLab API"),
    "argocd-repo-server": ("argocd", "clones the GitOps repository from its Git host"),
    "cert-manager": (gateway.CERT_MANAGER_NAMESPACE, "ACME: the CA's directory, and the DNS API for DNS-01"),
    "external-dns": (gateway.EXTERNAL_DNS_NAMESPACE, "publishes route hosts through the DNS provider's API"),
    "gpu-operator-driver": (gpu.NAMESPACE, "installs the driver: fetches kernel headers from package mirrors"),
    "node-cache": (node_cache.NAMESPACE, "the CSI plugin pulls models from an external registry "
                                         "(registry.type: external)"),
}
INTERNET_NAMESPACES = frozenset(namespace for namespace, _ in INTERNET_HTTPS.values())


def platform_flows(blueprint: Blueprint) -> list[PlatformFlows]:
    """The platform namespaces this blueprint creates, each with the flows its charts need."""
    from shipway.render import gitops, serving

    obs = observability.NAMESPACE
    # Argo Rollouts queries Prometheus for analysis and loads its Gateway API plugin from a file: no internet.
    flows = [PlatformFlows(serving.NAMESPACE, egress_namespaces=(obs,))]
    if blueprint.observability.enabled:
        # Prometheus scrapes every namespace and the nodes; Alertmanager calls receivers outside; Argo
        # Rollouts' analysis queries Prometheus.
        flows.append(PlatformFlows(obs, https_out=True, scrape_everything=True, ingress_ports=(3000, 9090, 9093),
                                   ingress_namespaces=(serving.NAMESPACE,),
                                   webhook_port=WEBHOOK_PORTS["observability"]))
        # node-exporter answers on the host's network, outside every NetworkPolicy, and calls nothing; its
        # namespace is default-deny for anything else that lands there.
        flows.append(PlatformFlows(observability.NODE_EXPORTER_NAMESPACE, kube_api=False))
    if isinstance(blueprint.registry, ZotRegistry):
        # Model pods of every team and CI through the gateway pull and push; on kind the nodes' image
        # mirror reaches zot's NodePort from node addresses. zot itself calls nothing.
        flows.append(PlatformFlows(registry.NAMESPACE, kube_api=False, ingress_ports=(registry.SERVICE_PORT,),
                                   ingress_from_teams=True,
                                   ingress_namespaces=(node_cache.NAMESPACE,) if node_cache.enabled(blueprint) else (),
                                   ingress_from_anywhere=blueprint.cluster.kind == "kind"))
    if blueprint.gitops.enabled:
        flows.append(PlatformFlows(gitops.NAMESPACE, https_out=True, ssh_out=True, ingress_ports=(8080,)))
    if gateway.needs_cert_manager(blueprint):
        # ACME over HTTPS; the HTTP-01 self-check fetches the challenge from the gateway's public address.
        flows.append(PlatformFlows(gateway.CERT_MANAGER_NAMESPACE, https_out=True, http_out=blueprint.gateway.enabled,
                                   webhook_port=WEBHOOK_PORTS["cert-manager"]))
    if blueprint.gateway.enabled:
        # The proxies take traffic from anywhere (load balancer or NodePort) and reach model servers on the
        # sidecar's serving port and zot; the controller watches the API and serves its webhook.
        registry_namespaces = (registry.NAMESPACE,) if isinstance(blueprint.registry, ZotRegistry) else ()
        flows.append(PlatformFlows(gateway.NAMESPACE, egress_namespaces=registry_namespaces,
                                   egress_to_teams=(SIDECAR_PORT,), ingress_ports=ENVOY_CONTAINER_PORTS,
                                   ingress_from_anywhere=True, webhook_port=ENVOY_GATEWAY_WEBHOOK_PORT))
        if blueprint.gateway.external_dns is not None:
            flows.append(PlatformFlows(gateway.EXTERNAL_DNS_NAMESPACE, https_out=True))
    if blueprint.serving.kserve:
        flows.append(PlatformFlows(serving.KSERVE_NAMESPACE, webhook_port=WEBHOOK_PORTS["kserve"]))
    if node_cache.enabled(blueprint):
        # The CSI plugin answers the kubelet on a host socket, not the pod network, so nothing comes in; it
        # pulls from the registry and calls nothing else (not even the API server).
        flows.append(PlatformFlows(node_cache.NAMESPACE, kube_api=False, ingress_from_gateway=False,
                                   registry_out=external_registry_port(blueprint) or registry.SERVICE_PORT))
    flows.append(gpu_flows(blueprint))
    return flows


def gpu_flows(blueprint: Blueprint) -> PlatformFlows:
    """The GPU stack: its controllers (operator, node feature discovery, fake-gpu-operator) watch the API.

    Its node agents (device plugin, toolkit, DCGM exporter) talk to the kubelet and the runtime through host
    sockets, not the pod network, and the DCGM exporter is scraped through allow-prometheus. The one pod that
    calls outside is the operator's driver container, which fetches kernel headers from the distribution's
    package mirrors (HTTP and HTTPS), so only a stack that installs the driver opens that. Pods on the host
    network are outside every NetworkPolicy; the rest of the namespace is default-deny.
    """
    driver = (not blueprint.simulate_gpus and blueprint.gpu_stack.mode == "operator"
              and blueprint.gpu_stack.install_driver)
    return PlatformFlows(gpu.NAMESPACE, https_out=driver, http_out=driver)


def platform_network_policies(blueprint: Blueprint) -> list[Obj]:
    """Default deny in every platform namespace, then only the flows platform_flows names."""
    objects: list[Obj] = []
    outside = {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}
    for flows in platform_flows(blueprint):
        ns = flows.namespace
        egress: list[Obj] = []
        ingress: list[Obj] = []
        if flows.kube_api:
            egress.append(kube_api_egress(blueprint))
        if flows.https_out:
            assert ns in INTERNET_NAMESPACES, f"{ns} reaches the internet but INTERNET_HTTPS does not say why"
            egress.append({"to": [outside], "ports": [{"protocol": "TCP", "port": HTTPS_PORT}]})
        if flows.ssh_out:
            egress.append({"to": [outside], "ports": [{"protocol": "TCP", "port": 22}]})
        if flows.http_out:
            egress.append({"to": [outside], "ports": [{"protocol": "TCP", "port": 80}]})
        if flows.scrape_everything:
            egress.append({"to": [{"namespaceSelector": {}}]})
            egress.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in PRIVATE_RANGES],
                           "ports": [{"protocol": "TCP", "port": port} for port in (9100, 10249, 10250)]})
        if flows.egress_namespaces:
            egress.append({"to": [_from_namespace(name) for name in flows.egress_namespaces]})
        if flows.registry_out is not None:
            target = outside if isinstance(blueprint.registry, ExternalRegistry) else _from_namespace(registry.NAMESPACE)
            egress.append({"to": [target], "ports": [{"protocol": "TCP", "port": flows.registry_out}]})
        if flows.egress_to_teams:
            egress.append({"to": [TEAM_NAMESPACES],
                           "ports": [{"protocol": "TCP", "port": p} for p in flows.egress_to_teams]})
        if flows.ingress_ports:
            # The gateway's proxies are the one way in from outside the cluster.
            sources = [_from_namespace(name) for name in flows.ingress_namespaces]
            if blueprint.gateway.enabled and flows.ingress_from_gateway:
                sources.append(_from_namespace(gateway.NAMESPACE))
            if flows.ingress_from_teams:
                sources.append(TEAM_NAMESPACES)
            rule: Obj = {"ports": [{"protocol": "TCP", "port": p} for p in flows.ingress_ports]}
            if not flows.ingress_from_anywhere:
                rule["from"] = sources
            # An empty `from` would admit everyone: with no source, the ports stay closed.
            if flows.ingress_from_anywhere or sources:
                ingress.append(rule)
        if flows.webhook_port is not None:
            ingress.append({"ports": [{"protocol": "TCP", "port": flows.webhook_port}]})
        objects += _base_policies(ns)
        if egress:
            objects.append(_policy("allow-platform-egress", ns, {"podSelector": {}, "policyTypes": ["Egress"],
                                                                 "egress": egress}))
        if ingress:
            objects.append(_policy("allow-platform-ingress", ns, {"podSelector": {}, "policyTypes": ["Ingress"],
                                                                  "ingress": ingress}))
    return objects


def _policy(name: str, ns: str, spec: Obj) -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata(name, ns),
            "spec": spec}


def _from_namespace(name: str) -> Obj:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def default_deny(ns: str) -> Obj:
    """Every pod of the namespace selected for ingress and egress with no rule: nothing in, nothing out,
    until another policy of the namespace names a flow."""
    return _policy("default-deny", ns, {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})


def _base_policies(ns: str) -> list[Obj]:
    """Default deny, DNS out, Prometheus in, and traffic between the namespace's own pods."""
    return [
        default_deny(ns),
        _policy("allow-dns", ns, {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}],
        }),
        _policy("allow-prometheus", ns, {
            "podSelector": {}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [_from_namespace(observability.NAMESPACE)]}],
        }),
        _policy("allow-same-namespace", ns, {
            "podSelector": {}, "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}]}], "egress": [{"to": [{"podSelector": {}}]}],
        }),
    ]


def rbac(team: Team, ns: str) -> list[Obj]:
    """A namespaced Role for model work and its binding to the team's groups."""
    rules = [
        {"apiGroups": [""], "resources": ["pods", "pods/log", "services", "configmaps", "events"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["argoproj.io"], "resources": ["rollouts", "analysisruns", "experiments"],
         "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["argoproj.io"], "resources": ["analysistemplates"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors", "prometheusrules"],
         "verbs": ["get", "list", "watch"]},
        # Creating Jobs (or pods) would let the team run a pod that mounts any Secret of the namespace,
        # the registry pull secret among them: only a blueprint that says runJobs grants it.
        {"apiGroups": ["batch"], "resources": ["jobs"],
         "verbs": ["get", "list", "watch", *(["create", "delete"] if team.run_jobs else [])]},
    ]
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata(TEAM_ROLE, ns),
            "rules": rules}
    if not team.groups:
        return [role]
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata(TEAM_ROLE, ns),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": TEAM_ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
                     for group in team.groups],
    }
    return [role, binding]


def render(blueprint: Blueprint, registry_configs: Mapping[str, Any] | None = None) -> LayerRender:
    """Every team namespace with its guard rails, and the cluster's priority classes.

    With `registry_configs` (per team a .dockerconfigjson, usually a Pulumi secret), each of a team's
    namespaces also gets the registry pull secret, holding that team's read-only pull identity,
    created here so that it follows its namespace.
    """
    layer = LayerRender(objects=priority_classes() + platform_network_policies(blueprint))
    registry_port = external_registry_port(blueprint)
    for team in blueprint.teams:
        resources = gpu_resources(blueprint, team)
        for env, ns in blueprint.namespaces[team.name].items():
            layer.namespaces.append(namespace(ns, {"shipway.dev/team": team.name, "shipway.dev/environment": env}))
            layer.objects.append(resource_quota(team, ns, resources))
            layer.objects.append(limit_range(ns))
            layer.objects += network_policies(ns, registry_port, blueprint.gateway.enabled)
            layer.objects += rbac(team, ns)
            if observability.retraining_enabled(blueprint):
                layer.objects += retrain.team_access(ns, observability.NAMESPACE)
            if registry_configs is not None and team.name in registry_configs:
                layer.objects.append(registry.pull_secret(ns, registry_configs[team.name]))
    return layer
