"""Serving: Argo Rollouts, the circuit-breaker analysis templates, the runtime catalog, KServe."""

from __future__ import annotations

import json

from shipway import metric_names as m
from shipway.render import observability, serving


def test_analysis_templates_match_the_profile_and_query_shared_metrics(each_blueprint):
    templates = {t["metadata"]["name"]: t for t in each_blueprint.kind("ClusterAnalysisTemplate")}
    assert set(templates) == set(each_blueprint.result.profile["rollouts"]["analysisTemplates"].values())
    queries = {}
    for template in templates.values():
        [metric] = template["spec"]["metrics"]
        queries[metric["name"]] = metric["provider"]["prometheus"]["query"]
        address = next(a for a in template["spec"]["args"] if a["name"] == "prometheus-address")
        assert address["value"] == observability.PROMETHEUS_URL
    assert m.REQUEST_ERRORS_TOTAL in queries["error-rate"] and m.REQUESTS_TOTAL in queries["error-rate"]
    assert f"{m.REQUEST_DURATION_SECONDS}_bucket" in queries["latency"]
    assert m.FEATURE_DRIFT_PSI in queries["drift"] and m.FEATURE_DRIFT_ROWS in queries["drift"]
    assert m.ONLINE_ACCURACY in queries["accuracy"]


def test_drift_bound_is_the_blueprint_psi(eks_prod):
    [drift] = [t for t in eks_prod.kind("ClusterAnalysisTemplate")
               if t["metadata"]["name"] == serving.ANALYSIS_TEMPLATES["drift"]]
    # The blueprint's bound is the default of the drift-threshold argument; the query measures PSI above it.
    assert {"name": "drift-threshold", "value": "0.2"} in drift["spec"]["args"]
    assert drift["spec"]["metrics"][0]["failureCondition"] == "len(result) > 0 && result[0] > 0"


def test_runtime_catalog_and_kserve_runtimes(eks_prod, kind_dev):
    [catalog] = [cm for cm in eks_prod.kind("ConfigMap") if cm["metadata"]["name"] == serving.RUNTIME_CATALOG]
    assert set(catalog["data"]) == {"sklearn", "xgboost", "triton", "vllm"}
    assert json.loads(catalog["data"]["vllm"])["protocol"] == "openai"
    runtimes = {r["metadata"]["name"] for r in eks_prod.kind("ClusterServingRuntime")}
    assert runtimes == {"shipway-sklearn", "shipway-xgboost", "shipway-triton"}
    assert {"cert-manager", "kserve-crd", "kserve"} <= set(eks_prod.releases)
    assert not kind_dev.kind("ClusterServingRuntime") and "kserve" not in kind_dev.releases
