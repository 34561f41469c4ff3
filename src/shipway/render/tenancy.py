"""Tenancy: per team and environment a restricted namespace, quota, limits, network policy and RBAC."""

from __future__ import annotations

from shipway.render.common import Obj, metadata, namespace
from shipway.render.layer import LayerRender
from shipway.spec.blueprint import GPU_RESOURCE, Blueprint, Team

MONITORING_NAMESPACE = "monitoring"
REGISTRY_NAMESPACE = "shipway-registry"
REGISTRY_PORT = 5000
INGRESS_NAMESPACES = ("ingress-nginx", "gateway-system", "istio-system")
SERVING_PRIORITY = "shipway-serving"
BATCH_PRIORITY = "shipway-batch"
TEAM_ROLE = "shipway-model-deployer"


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


def resource_quota(team: Team, ns: str) -> Obj:
    """The team's quota in one namespace, GPUs included."""
    quota = team.quota
    return {
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": metadata("shipway-quota", ns),
        "spec": {"hard": {
            "requests.cpu": quota.cpu, "limits.cpu": quota.cpu,
            "requests.memory": quota.memory, "limits.memory": quota.memory,
            f"requests.{GPU_RESOURCE}": str(quota.gpus),
            "persistentvolumeclaims": "20",
            "services.loadbalancers": "0",
            "services.nodeports": "0",
        }},
    }


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


def network_policies(ns: str) -> list[Obj]:
    """Default deny, then DNS and the registry out, Prometheus and the ingress path in, and traffic inside."""
    def policy(name: str, spec: Obj) -> Obj:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata(name, ns),
                "spec": spec}

    def from_namespace(name: str) -> Obj:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    return [
        policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        policy("allow-dns", {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}],
        }),
        policy("allow-prometheus", {
            "podSelector": {}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [from_namespace(MONITORING_NAMESPACE)]}],
        }),
        policy("allow-ingress-path", {
            "podSelector": {"matchLabels": {"app.kubernetes.io/component": "model-server"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [from_namespace(name) for name in INGRESS_NAMESPACES]}],
        }),
        policy("allow-registry", {
            "podSelector": {}, "policyTypes": ["Egress"],
            "egress": [{"to": [from_namespace(REGISTRY_NAMESPACE)],
                        "ports": [{"protocol": "TCP", "port": REGISTRY_PORT}]}],
        }),
        policy("allow-same-namespace", {
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
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch", "create", "delete"]},
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


def render(blueprint: Blueprint) -> LayerRender:
    """Every team namespace with its guard rails, and the cluster's priority classes."""
    layer = LayerRender(objects=priority_classes())
    for team in blueprint.teams:
        for env, ns in blueprint.namespaces[team.name].items():
            layer.namespaces.append(namespace(ns, {"shipway.dev/team": team.name, "shipway.dev/environment": env}))
            layer.objects.append(resource_quota(team, ns))
            layer.objects.append(limit_range(ns))
            layer.objects += network_policies(ns)
            layer.objects += rbac(team, ns)
    return layer
