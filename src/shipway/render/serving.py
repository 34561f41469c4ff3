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
    namespace,
)
from shipway.render.layer import LayerRender, Release
from shipway.spec.blueprint import Blueprint, Runtime
from shipway.spec.model import MLSERVER_IMPLEMENTATIONS

NAMESPACE = "argo-rollouts"
KSERVE_NAMESPACE = "kserve"
PLUGIN_VOLUME = "gatewayapi-plugin"
PLUGIN_DIR = "/plugins"
PLUGIN_BINARY = "rollouts-plugin-trafficrouter-gatewayapi"
RUNTIME_CATALOG = "shipway-runtime-catalog"
ANALYSIS_TEMPLATE_PREFIX = "shipway-model"
# The circuit breakers, by what they watch: the ClusterAnalysisTemplate names models reference.
ANALYSIS_TEMPLATES = {breaker: f"{ANALYSIS_TEMPLATE_PREFIX}-{breaker}" for breaker in model_rules.breaker_queries()}


def rollouts_values(blueprint: Blueprint) -> Obj:
    """Values for the argo-rollouts chart: metrics scraped by the Prometheus stack, and with the gateway on,
    the Gateway API traffic router, so each canary step sets the model's HTTPRoute weights.

    The plugin binary is copied from its image by an init container into a volume the controller reads; the
    chart's default providerRBAC already lets the controller update HTTPRoutes.
    """
    controller: Obj = {
        "replicas": 2,
        "metrics": {"enabled": True, "serviceMonitor": {"enabled": True,
                                                          "additionalLabels": {"release": PROMETHEUS_RELEASE}}},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    }
    if blueprint.gateway.enabled:
        controller["initContainers"] = [{
            "name": "gatewayapi-plugin",
            "image": catalog.ROLLOUTS_GATEWAY_PLUGIN_IMAGE,
            "command": ["cp", f"/bin/{PLUGIN_BINARY}", f"{PLUGIN_DIR}/{PLUGIN_BINARY}"],
            "securityContext": RESTRICTED_CONTAINER_SECURITY,
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
            "volumeMounts": [{"name": PLUGIN_VOLUME, "mountPath": PLUGIN_DIR}],
        }]
        controller["volumes"] = [{"name": PLUGIN_VOLUME, "emptyDir": {"sizeLimit": "256Mi"}}]
        controller["volumeMounts"] = [{"name": PLUGIN_VOLUME, "mountPath": PLUGIN_DIR, "readOnly": True}]
        controller["trafficRouterPlugins"] = [{"name": catalog.ROLLOUTS_GATEWAY_PLUGIN,
                                               "location": f"file://{PLUGIN_DIR}/{PLUGIN_BINARY}"}]
    return {
        "controller": controller,
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


# Where KServe's storage initializer puts a model, and the gRPC port its runtimes listen on
# (kserve v0.17.1 config/runtimes/kserve-mlserver.yaml and kserve-tritonserver.yaml).
KSERVE_MODEL_DIR = "/mnt/models"
KSERVE_GRPC_PORT = 9000


def _kserve_server(name: str, runtime: Runtime) -> Obj:
    """How a catalog runtime's server starts under KServe: MLServer by environment, Triton by arguments."""
    if name in MLSERVER_IMPLEMENTATIONS:
        return {"env": [{"name": "MLSERVER_MODEL_IMPLEMENTATION", "value": MLSERVER_IMPLEMENTATIONS[name]},
                        {"name": "MLSERVER_HTTP_PORT", "value": str(runtime.port)},
                        {"name": "MLSERVER_GRPC_PORT", "value": str(KSERVE_GRPC_PORT)}]}
    if name == "triton":
        return {"args": ["tritonserver", f"--model-store={KSERVE_MODEL_DIR}", f"--grpc-port={KSERVE_GRPC_PORT}",
                         f"--http-port={runtime.port}", "--allow-grpc=true", "--allow-http=true"]}
    return {}


def cluster_serving_runtime(name: str, runtime: Runtime) -> Obj:
    """A KServe ClusterServingRuntime for one catalog runtime."""
    container: Obj = {
        "name": "kserve-container",
        "image": runtime.image,
        **_kserve_server(name, runtime),
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
    """KServe CRDs and the KServe controller (raw deployment mode, no Knative); the gateway layer installs
    the cert-manager its webhooks need."""
    return [
        Release("kserve-crd", catalog.KSERVE_CRD, KSERVE_NAMESPACE, {}),
        Release("kserve", catalog.KSERVE, KSERVE_NAMESPACE,
                {"kserve": {"controller": {"deploymentMode": "RawDeployment"}}}),
    ]


def render(blueprint: Blueprint) -> LayerRender:
    """Argo Rollouts, the runtime catalog, and KServe with its runtimes when enabled."""
    layer = LayerRender(namespaces=[namespace(NAMESPACE)])
    if blueprint.serving.rollouts:
        layer.releases.append(Release("argo-rollouts", catalog.ARGO_ROLLOUTS, NAMESPACE, rollouts_values(blueprint)))
        layer.objects += analysis_templates(blueprint)
    layer.objects.append(runtime_catalog(blueprint))
    if blueprint.serving.kserve:
        layer.namespaces.append(namespace(KSERVE_NAMESPACE))
        layer.releases += kserve_releases()
        layer.objects += [cluster_serving_runtime(name, runtime)
                          for name, runtime in sorted(blueprint.serving.runtime_catalog.items())
                          if runtime.protocol == "v2"]
    return layer

