"""Retraining: the trigger service Alertmanager sends drift and accuracy alerts to, and what it reads.

The service runs from the Shipway image in the observability namespace (`shipway retrain-trigger`). Each model
with `retrain:` in its model.yaml gets a ConfigMap `<model>-retrain` in its own namespace, committed to the GitOps
repo with the rest of the model; the service reads it (Role: get configmaps, create events, in team namespaces
only) to learn which repository to start, and records an Event on the model's Rollout for every trigger.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from shipway.render.common import RESTRICTED_CONTAINER_SECURITY, RESTRICTED_POD_SECURITY, Obj, metadata

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
            "--gitlab-url", retraining.gitlab_url, "--attempts", str(retraining.attempts)]


def objects(blueprint: Blueprint, namespace: str, image: str, token_secret_data: dict[str, Any]) -> list[Obj]:
    """ServiceAccount, token Secret, Deployment, Service, NetworkPolicy and ServiceMonitor (team access: below)."""
    retraining = blueprint.observability.retraining
    assert retraining is not None
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "retrain-trigger"}
    env = [{"name": TOKEN_KEYS[key], "valueFrom": {"secretKeyRef": {"name": NAME, "key": key}}}
           for key in sorted(token_secret_data)]
    container = {
        "name": "trigger", "image": image, "args": args(retraining), "env": env,
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": PORT}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": PORT}, "periodSeconds": 20},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": dict(RESTRICTED_CONTAINER_SECURITY),
    }
    pod = {"serviceAccountName": NAME, "automountServiceAccountToken": True, "containers": [container],
           "securityContext": dict(RESTRICTED_POD_SECURITY)}
    made: list[Obj] = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(NAME, namespace, labels)},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata(NAME, namespace, labels),
         "stringData": dict(token_secret_data)},
        # One replica: the cooldown is kept in memory, so two replicas could each trigger once.
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(NAME, namespace, labels),
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": pod}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": metadata(NAME, namespace, labels),
         "spec": {"selector": labels, "ports": [{"name": "http", "port": PORT, "targetPort": PORT}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": metadata(NAME, namespace, labels),
         "spec": {"podSelector": {"matchLabels": labels}, "policyTypes": ["Ingress", "Egress"],
                  # Alertmanager and Prometheus live in this namespace; nothing else may post alerts.
                  "ingress": [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": PORT}]}],
                  "egress": [
                      {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                       "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                      # The GitHub or GitLab API and the Kubernetes API, over TLS.
                      {"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}]}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
         "metadata": metadata(NAME, namespace, {**labels, "release": "kube-prometheus-stack"}),
         "spec": {"selector": {"matchLabels": labels}, "endpoints": [{"port": "http", "path": "/metrics"}]}},
    ]
    return made


def team_access(team_namespace: str, service_namespace: str) -> list[Obj]:
    """In one team namespace: the service may read ConfigMaps and create Events there, nothing else.

    Created by the tenancy layer with the namespace it lives in, since team namespaces come after observability.
    """
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "retrain-trigger"}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata(NAME, team_namespace, labels),
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
                   {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": metadata(NAME, team_namespace, labels),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": service_namespace}]},
    ]
