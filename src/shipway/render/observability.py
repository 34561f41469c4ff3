"""Observability: kube-prometheus-stack, platform alert rules and Grafana dashboards."""

from __future__ import annotations

import json
from typing import Any

from shipway import catalog, metric_names as m
from shipway.catalog import PROMETHEUS_RELEASE
from shipway.render import delivery_rules, model_rules, retrain
from shipway.render.common import Obj, config_map, deep_merge, metadata, namespace, shipway_image
from shipway.render.layer import LayerRender, Release
from shipway.spec.blueprint import Blueprint

NAMESPACE = "monitoring"
# node-exporter needs the host (Pod Security privileged); it runs apart so `monitoring` stays restricted.
NODE_EXPORTER_NAMESPACE = "node-exporter"
PROMETHEUS_URL = f"http://{PROMETHEUS_RELEASE}-prometheus.{NAMESPACE}.svc.cluster.local:9090"
# The stack selects ServiceMonitors and PrometheusRules carrying its release label.
SELECTOR_LABELS = {"release": PROMETHEUS_RELEASE}
DASHBOARD_LABEL = "grafana_dashboard"
# kube-prometheus-stack components a managed control plane does not expose (kube-proxy: EKS binds its metrics
# to the node's loopback, GKE's Dataplane V2 runs none).
MANAGED_CONTROL_PLANE = ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")


def receivers_config(blueprint: Blueprint, secrets: dict[str, Any]) -> Obj:
    """Alertmanager routing to the blueprint's receivers; URLs come from Pulumi secrets."""
    receivers: list[Obj] = [{"name": "null"}]
    for receiver in blueprint.observability.receivers:
        secret = secrets[receiver.secret]
        if receiver.type == "slack":
            entry: Obj = {"slack_configs": [{"api_url": secret, "channel": receiver.channel, "send_resolved": True}]}
        elif receiver.type == "pagerduty":
            entry = {"pagerduty_configs": [{"routing_key": secret, "send_resolved": True}]}
        else:
            entry = {"webhook_configs": [{"url": secret, "send_resolved": True}]}
        receivers.append({"name": receiver.name, **entry})
    routes = [{"receiver": receiver.name, "continue": True, "matchers": ['severity=~"critical|warning"']}
              for receiver in blueprint.observability.receivers]
    if retraining_enabled(blueprint):
        trigger, route = retrain.alertmanager_route(NAMESPACE)
        receivers.append(trigger)
        routes.insert(0, route)
    return {
        "route": {"receiver": "null", "group_by": ["alertname", "namespace", "model"], "group_wait": "30s",
                  "group_interval": "5m", "repeat_interval": "4h",
                  "routes": [{"receiver": "null", "matchers": ['alertname="Watchdog"']}, *routes]},
        "receivers": receivers,
    }


def retraining_enabled(blueprint: Blueprint) -> bool:
    """Whether the blueprint runs the retraining trigger service."""
    retraining = blueprint.observability.retraining
    return retraining is not None and retraining.enabled


def stack_values(blueprint: Blueprint, receiver_secrets: dict[str, Any]) -> Obj:
    """Values for kube-prometheus-stack."""
    obs = blueprint.observability
    values: Obj = {
        "prometheus": {"prometheusSpec": {
            "retention": obs.retention,
            "storageSpec": {"volumeClaimTemplate": {"spec": {
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": obs.storage_size}}}}},
            "ruleSelectorNilUsesHelmValues": True,
            "serviceMonitorSelectorNilUsesHelmValues": True,
            "podMonitorSelectorNilUsesHelmValues": True,
            "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"memory": "8Gi"}},
        }},
        "alertmanager": {"config": receivers_config(blueprint, receiver_secrets)},
        "prometheus-node-exporter": {"namespaceOverride": NODE_EXPORTER_NAMESPACE},
        "grafana": {
            "enabled": obs.grafana,
            "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": "1",
                                       "searchNamespace": "ALL"}},
        },
    }
    if blueprint.is_cloud:
        # EKS and GKE run these out of reach: scraping them fails, and their Down alerts would page for ever.
        for component in MANAGED_CONTROL_PLANE:
            values[component] = {"enabled": False}
    return deep_merge(values, obs.values)


def platform_rules() -> Obj:
    """Alerts on the GPU fleet (DCGM) and node pool saturation."""
    groups = [
        {"name": "shipway-gpu-fleet", "rules": [
            {"alert": "GpuUtilisationLow",
             "expr": "avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL) < 10",
             "for": "2h", "labels": {"severity": "info"},
             "annotations": {"summary": "GPUs on {{ $labels.Hostname }} under 10% busy for 2h: idle spend."}},
            {"alert": "GpuMemoryNearlyFull",
             "expr": "max by (Hostname, gpu) (DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)) > 0.95",
             "for": "10m", "labels": {"severity": "warning"},
             "annotations": {"summary": "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} has over 95% memory used."}},
            {"alert": "GpuTooHot",
             "expr": "max by (Hostname, gpu) (DCGM_FI_DEV_GPU_TEMP) > 85",
             "for": "5m", "labels": {"severity": "warning"},
             "annotations": {"summary": "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} is above 85C."}},
        ]},
        {"name": "shipway-node-pools", "rules": [
            {"alert": "GpuPoolSaturated",
             "expr": 'sum by (node) (kube_pod_container_resource_requests{resource="nvidia_com_gpu"})'
                     ' / sum by (node) (kube_node_status_allocatable{resource="nvidia_com_gpu"}) >= 1',
             "for": "15m", "labels": {"severity": "warning"},
             "annotations": {"summary": "All GPUs on {{ $labels.node }} are requested; new GPU pods will pend."}},
            {"alert": "GpuPodsPending",
             # Requests are summed per pod first: a pod with two GPU containers would otherwise make
             # the join many-to-many and the rule fail to evaluate.
             "expr": 'sum(kube_pod_status_phase{phase="Pending"} * on (namespace, pod)'
                     ' (sum by (namespace, pod) (kube_pod_container_resource_requests{resource="nvidia_com_gpu"}) > 0))'
                     ' > 0',
             "for": "10m", "labels": {"severity": "warning"},
             "annotations": {"summary": "GPU pods have been pending for 10 minutes: a GPU pool is full."}},
        ]},
    ]
    return prometheus_rule("shipway-platform", groups)


def model_slo(blueprint: Blueprint) -> model_rules.ModelSlo:
    """The blueprint's default model SLOs as alert thresholds."""
    slo = blueprint.observability.slo
    return model_rules.ModelSlo(max_error_rate=slo.error_rate, max_latency_p99_seconds=slo.latency_p99_ms / 1000,
                                max_feature_psi=slo.drift_psi, min_online_accuracy=slo.accuracy_floor)


def model_slo_rules(blueprint: Blueprint) -> Obj:
    """The model SLO alerts over every model and version: each version's own thresholds, else the blueprint's."""
    return prometheus_rule("shipway-model-slo", model_rules.model_rule_groups(slo=model_slo(blueprint)))


def prometheus_rule(name: str, groups: list[Obj]) -> Obj:
    """A PrometheusRule the stack's rule selector picks up."""
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": metadata(name, NAMESPACE, SELECTOR_LABELS), "spec": {"groups": groups}}


def _panel(title: str, expr: str, panel_id: int, unit: str, y: int, x: int) -> Obj:
    return {"id": panel_id, "type": "timeseries", "title": title,
            "datasource": {"type": "prometheus", "uid": "prometheus"},
            "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"expr": expr, "refId": "A", "legendFormat": "__auto"}]}


def _dashboard(uid: str, title: str, panels: list[tuple[str, str, str]], since: str = "now-6h",
               model_variable: bool = True) -> str:
    built = [_panel(title_, expr, index + 1, unit, (index // 2) * 8, (index % 2) * 12)
             for index, (title_, expr, unit) in enumerate(panels)]
    board: Obj = {"uid": uid, "title": title, "schemaVersion": 39, "version": 1, "editable": False,
                  "time": {"from": since, "to": "now"}, "tags": ["shipway"], "panels": built}
    if model_variable:
        board["templating"] = {"list": [{
            "name": "model", "type": "query", "includeAll": True, "multi": True,
            "allValue": ".*", "datasource": {"type": "prometheus", "uid": "prometheus"},
            "query": f"label_values({m.REQUESTS_TOTAL}, model)", "refresh": 2}]}
    return json.dumps(board, indent=2, sort_keys=True)


def dashboards() -> list[Obj]:
    """Grafana dashboards as ConfigMaps the Grafana sidecar loads."""
    by_version = '{model=~"$model"}'
    gpu = _dashboard("shipway-gpu-fleet", "Shipway / GPU fleet", [
        ("GPU utilisation", "avg by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL)", "percent"),
        ("GPU memory used", "sum by (Hostname, gpu) (DCGM_FI_DEV_FB_USED)", "decmbytes"),
        ("GPU temperature", "max by (Hostname, gpu) (DCGM_FI_DEV_GPU_TEMP)", "celsius"),
        ("GPUs requested / allocatable",
         'sum(kube_pod_container_resource_requests{resource="nvidia_com_gpu"})'
         ' / sum(kube_node_status_allocatable{resource="nvidia_com_gpu"})', "percentunit"),
    ])
    delivery = _dashboard("shipway-model-delivery", "Shipway / Model delivery", [
        ("Requests per second by version",
         f"sum by (model, version) (rate({m.REQUESTS_TOTAL}{by_version}[5m]))", "reqps"),
        ("Error rate by version",
         f"sum by (model, version) (rate({m.REQUEST_ERRORS_TOTAL}{by_version}[5m]))"
         f" / sum by (model, version) (rate({m.REQUESTS_TOTAL}{by_version}[5m]))", "percentunit"),
        ("p99 latency by version",
         f"histogram_quantile(0.99, sum by (model, version, le) (rate({m.REQUEST_DURATION_SECONDS}_bucket{by_version}[5m])))",
         "s"),
        ("Largest feature PSI by version", f"max by (model, version) ({m.FEATURE_DRIFT_PSI}{by_version})", "none"),
        ("Online accuracy by version", f"min by (model, version) ({m.ONLINE_ACCURACY}{by_version})", "percentunit"),
        ("Rollouts by phase", "sum by (phase) (rollout_info)", "none"),
    ])
    dora = _dashboard("shipway-dora", "Shipway / Delivery performance (DORA)", delivery_rules.dashboard_panels(),
                      since="now-30d", model_variable=False)
    return [
        config_map("shipway-gpu-fleet-dashboard", NAMESPACE, {"gpu-fleet.json": gpu}, {DASHBOARD_LABEL: "1"}),
        config_map("shipway-model-delivery-dashboard", NAMESPACE, {"model-delivery.json": delivery},
                   {DASHBOARD_LABEL: "1"}),
        config_map("shipway-dora-dashboard", NAMESPACE, {"dora.json": dora}, {DASHBOARD_LABEL: "1"}),
    ]


def render(blueprint: Blueprint, receiver_secrets: dict[str, Any]) -> LayerRender:
    """The Prometheus stack, its rules and dashboards."""
    if not blueprint.observability.enabled:
        return LayerRender()
    layer = LayerRender(namespaces=[namespace(NAMESPACE), namespace(NODE_EXPORTER_NAMESPACE)])
    layer.releases.append(Release(PROMETHEUS_RELEASE, catalog.KUBE_PROMETHEUS_STACK, NAMESPACE,
                                  stack_values(blueprint, receiver_secrets)))
    layer.objects.append(platform_rules())
    layer.objects.append(model_slo_rules(blueprint))
    layer.objects.append(prometheus_rule("shipway-delivery", delivery_rules.rule_groups()))
    layer.objects += dashboards()
    if retraining_enabled(blueprint):
        retraining = blueprint.observability.retraining
        assert retraining is not None
        tokens = {key: receiver_secrets[name] for key, name in (("github-token", retraining.github_token_secret),
                                                                 ("gitlab-token", retraining.gitlab_token_secret))
                  if name}
        image = shipway_image(blueprint)
        layer.objects += retrain.objects(blueprint, NAMESPACE, image, tokens)
        layer.objects.append(prometheus_rule("shipway-retrain", retrain.failure_rules()))
    return layer
