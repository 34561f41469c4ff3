"""Retraining: the trigger service Alertmanager sends drift and accuracy alerts to, and what it reads.

The service runs from the Shipway image in the observability namespace (`shipway retrain-trigger`). Each model
with `retrain:` in its model.yaml gets a ConfigMap `<model>-retrain` in its own namespace, committed to the GitOps
repo with the rest of the model; the service reads it (Role: get configmaps, create events, in team namespaces
only) to learn which repository to start, and records an Event on the model's Rollout for every trigger.

The team writes that ConfigMap, so the repository it names is checked against the blueprint's allow-list for the
team (teams[].retrainRepositories), rendered into the service's own ConfigMap keyed by team namespace: the
platform's token starts nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shipway.render.common import (
    RESTRICTED_CONTAINER_SECURITY,
    RESTRICTED_POD_SECURITY,
    Obj,
    kube_api_egress,
    metadata,
    service_monitor,
)

if TYPE_CHECKING:
    from shipway.spec.blueprint import Blueprint, Retraining
    from shipway.spec.model import ModelSpec

NAME = "shipway-retrain-trigger"
PORT = 8080
CONFIGMAP_SUFFIX = "-retrain"
DATA_KEY = "retrain.json"
EVENT_TYPE = "shipway-retrain"
# Alertmanager's route picks these model alerts (render/model_rules.py) and maps each to a retrain signal.
SIGNALS = {"ShipwayModelFeatureDrift": "drift", "ShipwayModelOnlineAccuracyLow": "accuracy"}
TRIGGERS_TOTAL = "shipway_retrain_triggers_total"
FAILURES_TOTAL = "shipway_retrain_trigger_failures_total"
SKIPPED_TOTAL = "shipway_retrain_skipped_total"
GITHUB_TOKEN_ENV = "SHIPWAY_GITHUB_TOKEN"
GITLAB_TOKEN_ENV = "SHIPWAY_GITLAB_TOKEN"
TOKEN_KEYS = {"github-token": GITHUB_TOKEN_ENV, "gitlab-token": GITLAB_TOKEN_ENV}
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "retrain-trigger"}
ALLOWED_KEY = "allowed.json"
CONFIG_DIR = "/etc/shipway-retrain"


def repository_allowed(patterns: Iterable[str], repository: str) -> bool:
    """Whether an allow-list (owner/name, group/sub/name, or a prefix ending /*) holds a repository or project.

    Compared without case: GitHub and GitLab resolve owner, group and name paths without it. `prefix/*` holds
    every path below the prefix (a GitLab group's subgroups included), never the prefix itself.
    """
    wanted = repository.casefold()
    for pattern in patterns:
        pattern = pattern.casefold()
        if pattern.endswith("/*") and wanted.startswith(pattern[:-1]) and len(wanted) > len(pattern) - 1:
            return True
        if pattern == wanted:
            return True
    return False


def allowed_document(blueprint: Blueprint) -> dict[str, Any]:
    """The allow-list the service enforces: per team namespace, its team and the repositories it may start."""
    return {ns: {"team": team.name, "github": list(team.retrain_repositories.github),
                 "gitlab": list(team.retrain_repositories.gitlab)}
            for team in blueprint.teams for ns in blueprint.namespaces[team.name].values()}


def config_map_name(model: str) -> str:
    """The name of a model's retrain ConfigMap."""
    return f"{model}{CONFIGMAP_SUFFIX}"


def target_document(spec: ModelSpec) -> dict[str, Any]:
    """What the service needs to start a model's retraining: signals, repository, cooldown in seconds."""
    from shipway.spec.base import duration_seconds

    assert spec.retrain is not None
    return {"model": spec.name, "team": spec.team, "signals": list(spec.retrain.signals),
            "cooldownSeconds": duration_seconds(spec.retrain.cooldown),
            "repository": spec.retrain.repository.model_dump(by_alias=True)}


def model_config_map(spec: ModelSpec, namespace: str, labels: dict[str, str]) -> Obj:
    """The model's retrain ConfigMap, in its namespace, beside its Rollout."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": metadata(config_map_name(spec.name), namespace, labels),
            "data": {DATA_KEY: json.dumps(target_document(spec), indent=2, sort_keys=True)}}


def service_url(namespace: str) -> str:
    """Where Alertmanager posts the alerts."""
    return f"http://{NAME}.{namespace}.svc.cluster.local:{PORT}/alerts"


def alertmanager_route(namespace: str) -> tuple[Obj, Obj]:
    """The receiver and the route (first, continuing) that send drift and accuracy alerts to the service."""
    receiver = {"name": NAME, "webhook_configs": [{"url": service_url(namespace), "send_resolved": False,
                                                    "max_alerts": 0}]}
    route = {"receiver": NAME, "continue": True, "group_by": ["alertname", "namespace", "model"],
             "matchers": [f'alertname=~"{"|".join(SIGNALS)}"']}
    return receiver, route


def failure_rules() -> list[Obj]:
    """The alert on triggers that failed after every retry."""
    return [{"name": "shipway-retrain", "rules": [{
        "alert": "ShipwayRetrainTriggerFailing",
        "expr": f"sum by (namespace, model) (increase({FAILURES_TOTAL}[15m])) > 0",
        "labels": {"severity": "warning"},
        "annotations": {"summary": "Retraining could not be started",
                        "description": "{{ $labels.model }} in {{ $labels.namespace }}: the retraining trigger "
                                       "failed after every retry; check the service's log and its token."}}]}]


def args(retraining: Retraining) -> list[str]:
    """The service's command-line arguments."""
    return ["retrain-trigger", "--listen", f"0.0.0.0:{PORT}", "--github-api", retraining.github_api_url,
            "--gitlab-url", retraining.gitlab_url, "--attempts", str(retraining.attempts),
            "--allowed", f"{CONFIG_DIR}/{ALLOWED_KEY}"]


def forge_ports(retraining: Retraining) -> list[int]:
    """The ports the GitHub and GitLab URLs are served on (443 unless a URL names another)."""
    ports = set()
    for url in (retraining.github_api_url, retraining.gitlab_url):
        parts = urlsplit(url)
        ports.add(parts.port or (80 if parts.scheme == "http" else 443))
    return sorted(ports)


def egress(blueprint: Blueprint) -> list[Obj]:
    """DNS, the Kubernetes API, and GitHub or GitLab: nothing else, each by its own rule.

    - The Kubernetes API (read the model's ConfigMap, write Events): the API server is not a pod, so the rule
      names its addresses, the same rule every platform namespace uses (common.kube_api_egress).
    - GitHub or GitLab (start the pipeline): on the internet, so every public address, private ranges excepted,
      on the ports the blueprint's URLs name (tenancy.INTERNET_HTTPS lists why this component goes out). A GitHub
      Enterprise or GitLab on a private address is outside this rule.
    """
    from shipway.render.tenancy import PRIVATE_RANGES

    retraining = blueprint.observability.retraining
    assert retraining is not None
    dns = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
           "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    forges = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(PRIVATE_RANGES)}}],
              "ports": [{"protocol": "TCP", "port": port} for port in forge_ports(retraining)]}
    return [dns, kube_api_egress(blueprint), forges]


def objects(blueprint: Blueprint, namespace: str, image: str, token_secret_data: dict[str, Any]) -> list[Obj]:
    """ServiceAccount, token Secret, Deployment, Service, NetworkPolicy and ServiceMonitor (team access: below)."""
    retraining = blueprint.observability.retraining
    assert retraining is not None
    labels = dict(LABELS)
    allowed = json.dumps(allowed_document(blueprint), indent=2, sort_keys=True)
    env = [{"name": TOKEN_KEYS[key], "valueFrom": {"secretKeyRef": {"name": NAME, "key": key}}}
           for key in sorted(token_secret_data)]
    container = {
        "name": "trigger", "image": image, "args": args(retraining), "env": env,
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": PORT}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": PORT}, "periodSeconds": 20},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": dict(RESTRICTED_CONTAINER_SECURITY),
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    pod = {"serviceAccountName": NAME, "automountServiceAccountToken": True, "containers": [container],
           "securityContext": dict(RESTRICTED_POD_SECURITY),
           "volumes": [{"name": "config", "configMap": {"name": NAME}}]}
    # A changed allow-list rolls the pod, which reads the file once at start.
    template_metadata = {"labels": labels, "annotations": {
        "shipway.dev/config-sha256": hashlib.sha256(allowed.encode()).hexdigest()}}
    made: list[Obj] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(NAME, namespace, labels)},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata(NAME, namespace, labels),
         "stringData": dict(token_secret_data)},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(NAME, namespace, labels),
         "data": {ALLOWED_KEY: allowed}},
        # One replica: the cooldown is kept in memory, so two replicas could each trigger once.
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(NAME, namespace, labels),
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": template_metadata, "spec": pod}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": metadata(NAME, namespace, labels),
         "spec": {"selector": labels, "ports": [{"name": "http", "port": PORT, "targetPort": PORT}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata(NAME, namespace, labels),
         "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress", "Egress"],
                  # Alertmanager and Prometheus live in this namespace; nothing else may post alerts.
                  "ingress": [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": PORT}]}],
                  "egress": egress(blueprint)}},
        service_monitor(NAME, namespace, labels, "http"),
    ]
    return made


def team_access(team_namespace: str, service_namespace: str) -> list[Obj]:
    """In one team namespace: the service may get ConfigMaps by name and create Events there, nothing else.

    Created by the tenancy layer with the namespace it lives in, since team namespaces come after observability.
    No resourceNames: the ConfigMaps are `<model>-retrain`, and models arrive later through the GitOps repo, so
    their names are not known when the platform renders; RBAC matches no name pattern or label. The Role is kept to
    `get` (no list or watch), so the service reads only a ConfigMap whose name it already knows, and the service
    asks only for `<model>-retrain` of a model whose alert fired. Events cannot be named either (generateName).
    """
    labels = dict(LABELS)
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata(NAME, team_namespace, labels),
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
                   {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": metadata(NAME, team_namespace, labels),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": service_namespace}]},
    ]
