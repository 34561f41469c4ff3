"""Serving: Argo Rollouts, the runtime catalog, and KServe when enabled."""

from __future__ import annotations

import json

from shipway import catalog
from shipway.catalog import PROMETHEUS_RELEASE
from shipway.render import model_rules, observability
from shipway.render.common import (
    RESTRICTED_CONTAINER_SECURITY,
    Obj,
    config_map,
    metadata,
    platform_namespace,
)
from shipway.render.layer import LayerRender, Release
from shipway.spec.blueprint import Blueprint, Runtime

NAMESPACE = "argo-rollouts"
KSERVE_NAMESPACE = "kserve"
CERT_MANAGER_NAMESPACE = "cert-manager"
RUNTIME_CATALOG = "shipway-runtime-catalog"
ANALYSIS_TEMPLATE_PREFIX = "shipway-model"
# The circuit breakers, by what they watch: the ClusterAnalysisTemplate names models reference.
ANALYSIS_TEMPLATES = {breaker: f"{ANALYSIS_TEMPLATE_PREFIX}-{breaker}" for breaker in model_rules.breaker_queries()}


def rollouts_values() -> Obj:
    """Values for the argo-rollouts chart: metrics scraped by the Prometheus stack."""
    return {
        "controller": {
            "replicas": 2,
            "metrics": {"enabled": True, "serviceMonitor": {"enabled": True,
                                                              "additionalLabels": {"release": PROMETHEUS_RELEASE}}},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        },
        "containerSecurityContext": RESTRICTED_CONTAINER_SECURITY,
        "dashboard": {"enabled": False},
    }


def circuit_breaker(blueprint: Blueprint) -> model_rules.CircuitBreaker:
    """Canary bounds from the blueprint's SLOs, querying the observability layer's Prometheus."""
    return model_rules.CircuitBreaker(max_feature_psi=blueprint.observability.slo.drift_psi,
                                      prometheus_address=observability.PROMETHEUS_URL)


def analysis_templates(blueprint: Blueprint) -> list[Obj]:
    """The ClusterAnalysisTemplates that abort a canary: error rate, latency, drift, accuracy."""
    return model_rules.circuit_breaker_templates(circuit_breaker(blueprint), prefix=ANALYSIS_TEMPLATE_PREFIX)


def runtime_catalog(blueprint: Blueprint) -> Obj:
    """The runtime catalog as a ConfigMap, read by model delivery and people."""
    data = {name: json.dumps(runtime.model_dump(by_alias=True), sort_keys=True)
            for name, runtime in sorted(blueprint.serving.runtime_catalog.items())}
    return config_map(RUNTIME_CATALOG, NAMESPACE, data)


def cluster_serving_runtime(name: str, runtime: Runtime) -> Obj:
    """A KServe ClusterServingRuntime for one catalog runtime."""
    container: Obj = {
        "name": "kserve-container",
        "image": runtime.image,
        "ports": [{"containerPort": runtime.port, "protocol": "TCP"}],
        "securityContext": RESTRICTED_CONTAINER_SECURITY,
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
    }
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime",
        "metadata": metadata(f"shipway-{name}"),
        "spec": {
            "supportedModelFormats": [{"name": runtime.model_format, "version": "1", "autoSelect": True}],
            "protocolVersions": ["v2"] if runtime.protocol == "v2" else ["v1"],
            "multiModel": False,
            "containers": [container],
        },
    }


def kserve_releases() -> list[Release]:
    """cert-manager, KServe CRDs and the KServe controller (raw deployment mode, no Knative)."""
    return [
        Release("cert-manager", catalog.CERT_MANAGER, CERT_MANAGER_NAMESPACE, {"crds": {"enabled": True}}),
        Release("kserve-crd", catalog.KSERVE_CRD, KSERVE_NAMESPACE, {}),
        Release("kserve", catalog.KSERVE, KSERVE_NAMESPACE,
                {"kserve": {"controller": {"deploymentMode": "RawDeployment"}}}),
    ]


def render(blueprint: Blueprint) -> LayerRender:
    """Argo Rollouts, the runtime catalog, and KServe with its runtimes when enabled."""
    layer = LayerRender(namespaces=[platform_namespace(NAMESPACE)])
    if blueprint.serving.rollouts:
        layer.releases.append(Release("argo-rollouts", catalog.ARGO_ROLLOUTS, NAMESPACE, rollouts_values()))
        layer.objects += analysis_templates(blueprint)
    layer.objects.append(runtime_catalog(blueprint))
    if blueprint.serving.kserve:
        layer.namespaces += [platform_namespace(CERT_MANAGER_NAMESPACE), platform_namespace(KSERVE_NAMESPACE)]
        layer.releases += kserve_releases()
        layer.objects += [cluster_serving_runtime(name, runtime)
                          for name, runtime in sorted(blueprint.serving.runtime_catalog.items())
                          if runtime.protocol == "v2"]
    return layer

