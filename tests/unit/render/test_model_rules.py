"""Model SLO rules and circuit-breaker templates: valid custom resources, queries from metric_names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shipway import metric_names as m
from shipway.render.model_rules import (
    BREAKER_ARGS,
    DRIFT_ARGS,
    CircuitBreaker,
    ModelSlo,
    breaker_queries,
    circuit_breaker_templates,
    model_rule_groups,
    prometheus_rule,
    resolve_args,
    template_args,
)



def _validate(document: dict, schemas: Path, relative: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    path = schemas / relative
    if not path.is_file():
        pytest.skip(f"CRD schema {relative} not found under {schemas}")
    jsonschema.Draft7Validator(json.loads(path.read_text())).validate(document)


def test_prometheus_rule_is_a_valid_custom_resource(crd_schemas: Path) -> None:
    rule = prometheus_rule("shipway-models", "monitoring", model_rule_groups(), {"release": "kube-prometheus-stack"})
    _validate(rule, crd_schemas, "monitoring.coreos.com/prometheusrule_v1.json")
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert set(alerts) == {
        "ShipwayModelErrorRateHigh",
        "ShipwayModelLatencyP99High",
        "ShipwayModelFeatureDrift",
        "ShipwayModelOnlineAccuracyLow",
    }
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_thresholds_and_selectors_reach_the_expressions() -> None:
    slo = ModelSlo(max_error_rate=0.01, max_latency_p99_seconds=0.2, max_feature_psi=0.3, min_online_accuracy=0.9,
                   rate_window="1m", for_duration="30s", evaluation_interval="15s")
    (group,) = model_rule_groups("iris", "team-a", slo)
    assert group["interval"] == "15s"
    exprs = {rule["alert"]: rule["expr"] for rule in group["rules"]}
    sel = m.selector("iris", namespace="team-a")
    by = ("namespace", "model", "version")
    on = "on(namespace, model, version)"
    assert exprs["ShipwayModelErrorRateHigh"].startswith(f"{m.error_rate(sel, '1m', by)} > {on}")
    assert exprs["ShipwayModelLatencyP99High"].startswith(f"{m.latency_p99(sel, '1m', by)} > on(")
    assert exprs["ShipwayModelFeatureDrift"].startswith(
        f"max by (namespace, model, version)({m.FEATURE_DRIFT_PSI}{sel} and ({m.FEATURE_DRIFT_ROWS}{sel} >= "
        f"{on} group_left() (")
    assert exprs["ShipwayModelOnlineAccuracyLow"].startswith(f"{m.online_accuracy(sel, by)} < on(")
    assert all(rule["for"] == "30s" for rule in group["rules"])


def test_each_alert_compares_with_the_models_own_threshold_else_the_default() -> None:
    slo = ModelSlo(max_error_rate=0.01, max_latency_p99_seconds=0.2, max_feature_psi=0.3, min_online_accuracy=0.9,
                   min_drift_rows=400)
    exprs = {rule["alert"]: rule["expr"] for rule in model_rule_groups(slo=slo)[0]["rules"]}
    on = "namespace, model, version"
    expected = {
        "ShipwayModelErrorRateHigh": [(m.SLO_ERROR_RATE, "max", m.REQUESTS_TOTAL, "0.01")],
        "ShipwayModelLatencyP99High": [(m.SLO_LATENCY_P99_SECONDS, "max", m.REQUESTS_TOTAL, "0.2")],
        "ShipwayModelFeatureDrift": [(m.SLO_DRIFT_PSI, "max", m.FEATURE_DRIFT_PSI, "0.3"),
                                     (m.SLO_DRIFT_MIN_ROWS, "max", m.FEATURE_DRIFT_ROWS, "400")],
        "ShipwayModelOnlineAccuracyLow": [(m.SLO_ACCURACY_FLOOR, "min", m.ONLINE_ACCURACY, "0.9")],
    }
    for alert, thresholds in expected.items():
        for gauge, lenient, present, default in thresholds:
            # The per-feature rows guard joins many features to one threshold per version.
            join = " group_left()" if gauge == m.SLO_DRIFT_MIN_ROWS else ""
            assert f"on({on}){join} ({lenient} by ({on}) ({gauge}) or (group by ({on}) ({present}) * {default}))" in (
                exprs[alert]), alert


def test_circuit_breakers_are_valid_cluster_analysis_templates(crd_schemas: Path) -> None:
    templates = circuit_breaker_templates(CircuitBreaker(count=5))
    assert [t["metadata"]["name"] for t in templates] == [
        "shipway-model-error-rate",
        "shipway-model-latency",
        "shipway-model-drift",
        "shipway-model-accuracy",
        "shipway-model-llm-error-rate",
        "shipway-model-llm-ttft",
        "shipway-model-llm-itl",
    ]
    for template in templates:
        _validate(template, crd_schemas, "argoproj.io/clusteranalysistemplate_v1alpha1.json")
        (metric,) = template["spec"]["metrics"]
        prometheus = metric["provider"]["prometheus"]
        assert prometheus["address"] == "{{args.prometheus-address}}"
        assert metric["count"] == 5
        names = [arg["name"] for arg in template["spec"]["args"]]
        assert names == list(BREAKER_ARGS) + (list(DRIFT_ARGS) if metric["name"] == "drift" else [])


def test_breakers_compare_the_canary_with_stable_by_version() -> None:
    queries = breaker_queries()
    args = {"model": "iris", "namespace": "team-a", "canary-version": "v2", "stable-version": "v1"}
    canary = m.selector("iris", "v2", "team-a")
    stable = m.selector("iris", "v1", "team-a")
    for name in ("error-rate", "latency", "accuracy"):
        query = resolve_args(queries[name][0], args)
        assert canary in query and stable in query, name
    drift = resolve_args(queries["drift"][0], {**args, "drift-threshold": "0.3", "drift-min-rows": "700"})
    assert m.max_feature_psi(canary, min_rows="700") in drift and stable not in drift
    assert "- 0.3)" in drift and f"{m.FEATURE_DRIFT_ROWS}{canary} >= 700" in drift
    with pytest.raises(KeyError, match="canary-version"):
        resolve_args(queries["drift"][0], {"model": "iris", "namespace": "x"})


def test_the_drift_breaker_takes_the_models_bound_and_defaults_to_the_platforms() -> None:
    [drift] = [t for t in circuit_breaker_templates(CircuitBreaker(max_feature_psi=0.2, min_drift_rows=500))
               if t["spec"]["metrics"][0]["name"] == "drift"]
    given = {"model": "iris", "namespace": "a", "canary-version": "v2", "stable-version": "v1"}
    query = drift["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    assert "- 0.2)" in resolve_args(query, template_args(drift, given))
    assert "- 0.35)" in resolve_args(query, template_args(drift, {**given, "drift-threshold": "0.35"}))
    # Measured as PSI above the bound: passing at or under zero.
    assert drift["spec"]["metrics"][0]["successCondition"] == "len(result) > 0 && result[0] <= 0"
