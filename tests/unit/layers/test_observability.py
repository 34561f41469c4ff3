"""Observability: the Prometheus stack, rules, dashboards, and the labels that wire other layers to it."""

from __future__ import annotations

import json

from shipway import metric_names as m
from shipway.render import observability


def test_every_service_monitor_and_rule_is_selected_by_the_stack(each_blueprint):
    prom = each_blueprint.releases["kube-prometheus-stack"]["values"]["prometheus"]["prometheusSpec"]
    # With these on, the stack selects only objects carrying its release label.
    assert prom["serviceMonitorSelectorNilUsesHelmValues"] and prom["ruleSelectorNilUsesHelmValues"]
    for kind in ("ServiceMonitor", "PrometheusRule"):
        for obj in each_blueprint.kind(kind):
            assert obj["metadata"]["labels"]["release"] == "kube-prometheus-stack", obj["metadata"]["name"]
    chart_monitors = [
        ("gpu-operator", "dcgmExporter.serviceMonitor"), ("dcgm-exporter", "serviceMonitor"),
        ("argo-rollouts", "controller.metrics.serviceMonitor"), ("argo-cd", "controller.metrics.serviceMonitor"),
        ("argo-cd", "server.metrics.serviceMonitor"), ("argo-cd", "repoServer.metrics.serviceMonitor"),
    ]
    for release, path in chart_monitors:
        if release not in each_blueprint.releases:
            continue
        node = each_blueprint.releases[release]["values"]
        for key in path.split("."):
            node = node[key]
        if node["enabled"]:
            assert node["additionalLabels"] == {"release": "kube-prometheus-stack"}, (release, path)


def test_charts_that_cannot_label_their_monitors_get_shipway_ones(kind_dev):
    assert "metrics" not in kind_dev.releases["zot"]["values"]
    assert "statusExporter" not in kind_dev.releases["fake-gpu-operator"]["values"]
    monitors = {sm["metadata"]["name"]: sm["spec"] for sm in [*kind_dev.kind("ServiceMonitor"),
                                                              *kind_dev.kind("PodMonitor")]}
    assert monitors["shipway-zot"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "zot",
                                                                   "app.kubernetes.io/instance": "zot"}
    assert monitors["shipway-simulated-dcgm-exporter"]["endpoints"][0]["port"] == "gpu-metrics"


def test_stack_values_follow_the_blueprint(eks_prod):
    values = eks_prod.releases["kube-prometheus-stack"]["values"]
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "30d"
    assert spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "500Gi"
    receivers = {r["name"] for r in values["alertmanager"]["config"]["receivers"]}
    assert receivers == {"null", "ml-oncall", "ml-alerts", "shipway-retrain-trigger"}
    assert values["grafana"]["sidecar"]["dashboards"]["label"] == observability.DASHBOARD_LABEL


def test_model_slo_thresholds_come_from_the_blueprint(eks_prod):
    [rule] = [r for r in eks_prod.kind("PrometheusRule") if r["metadata"]["name"] == "shipway-model-slo"]
    alerts = {a["alert"]: a["expr"] for g in rule["spec"]["groups"] for a in g["rules"]}
    # The blueprint's SLOs are the defaults, for versions whose sidecar exports no threshold of its own.
    assert alerts["ShipwayModelErrorRateHigh"].endswith(f"({m.SLO_ERROR_RATE}) or (group by (namespace, model, version)"
                                                        f" ({m.REQUESTS_TOTAL}) * 0.005))")
    assert alerts["ShipwayModelLatencyP99High"].endswith(f" * 0.25))")
    assert f"({m.SLO_LATENCY_P99_SECONDS})" in alerts["ShipwayModelLatencyP99High"]
    assert alerts["ShipwayModelOnlineAccuracyLow"].endswith(f"({m.ONLINE_ACCURACY}) * 0.9))")
    assert f"({m.SLO_ACCURACY_FLOOR})" in alerts["ShipwayModelOnlineAccuracyLow"]
    assert m.REQUEST_ERRORS_TOTAL in alerts["ShipwayModelErrorRateHigh"]
    assert m.FEATURE_DRIFT_PSI in alerts["ShipwayModelFeatureDrift"]


def test_dashboards_load_through_the_grafana_sidecar(kind_dev):
    boards = [cm for cm in kind_dev.kind("ConfigMap") if cm["metadata"]["labels"].get(observability.DASHBOARD_LABEL)]
    titles = {json.loads(next(iter(cm["data"].values())))["title"] for cm in boards}
    assert titles == {"Shipway / GPU fleet", "Shipway / Model delivery", "Shipway / Delivery performance (DORA)"}
    delivery = next(cm for cm in boards if "model-delivery.json" in cm["data"])["data"]["model-delivery.json"]
    assert m.REQUESTS_TOTAL in delivery and m.ONLINE_ACCURACY in delivery


def test_managed_control_planes_are_not_scraped(kind_dev, eks_prod, gke_prod):
    from shipway.render.observability import MANAGED_CONTROL_PLANE

    # EKS and GKE hide these; left on, KubeControllerManagerDown and KubeSchedulerDown would page for ever.
    for cloud in (eks_prod, gke_prod):
        values = cloud.releases["kube-prometheus-stack"]["values"]
        assert {component: values[component] for component in MANAGED_CONTROL_PLANE} == {
            component: {"enabled": False} for component in MANAGED_CONTROL_PLANE}
    # kind runs its own control plane, which the stack scrapes.
    assert not set(MANAGED_CONTROL_PLANE) & set(kind_dev.releases["kube-prometheus-stack"]["values"])


def test_the_retrain_trigger_token_is_a_secret_input(eks_prod):
    secret = eks_prod.named("shipway-prod-observability-secret--monitoring--shipway-retrain-trigger")
    assert secret.inputs["stringData"] == "<secret>"
    # Team access comes with the team namespaces, in the tenancy layer created after them.
    role = eks_prod.named("shipway-prod-tenancy-role--fraud-prod--shipway-retrain-trigger")
    assert eks_prod.parent_type(role) == "shipway:tenancy:Tenancy"
