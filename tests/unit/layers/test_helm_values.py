"""Pins every Helm value path Shipway sets, per chart, as checked against each chart's documented values.

Where each path was checked (chart values.yaml or generated README key table, in the chart's repository):
argo-cd: argoproj/argo-helm charts/argo-cd README; argo-rollouts: argoproj/argo-helm charts/argo-rollouts/values.yaml
(trafficRouterPlugins, initContainers, volumes, volumeMounts as ../shared/charts/ARGO-ROLLOUTS-GATEWAYAPI-PLUGIN.md
shows); cert-manager and external-dns: values.yaml of the charts at their pins in ../shared/charts;
kube-prometheus-stack: prometheus-community/helm-charts (prometheusSpec) and grafana/helm-charts (sidecar);
gpu-operator: NVIDIA/gpu-operator deployments/gpu-operator/values.yaml; nvidia-device-plugin: NVIDIA/k8s-device-plugin
deployments/helm/nvidia-device-plugin/values.yaml; dcgm-exporter: NVIDIA/dcgm-exporter deployment/values.yaml;
zot: project-zot/helm-charts charts/zot/values.yaml and templates; fake-gpu-operator: run-ai/fake-gpu-operator
deploy/fake-gpu-operator/values.yaml and templates. The gpu-operator's GKE keys (hostPaths.driverInstallDir,
toolkit.installDir, cdi.enabled, cdi.default) were checked against public GKE installs of the operator, the
dcgm-exporter's extraHostVolumes/extraVolumeMounts/extraEnv against its deployment/values.yaml. A path added to the render code fails here until it is checked
and listed.
"""

from __future__ import annotations

from typing import Any

import pytest

from layer_support import dotted, synthesised

from shipway.render import gpu, nodepools, registry
from shipway.spec.blueprint import ExistingCluster

# Dotted paths Shipway sets, per chart; [a.b] is one key that contains dots.
DOCUMENTED: dict[str, set[str]] = {
    "argo-cd": {
        "global.domain", "configs.params.[server.insecure]", "configs.params.[applicationsetcontroller.policy]",
        "configs.cm.[exec.enabled]", "configs.cm.[admin.enabled]", "redis-ha.enabled", "controller.replicas",
        "controller.metrics.enabled", "controller.metrics.serviceMonitor.enabled",
        "controller.metrics.serviceMonitor.additionalLabels", "server.replicas", "server.metrics.enabled",
        "server.metrics.serviceMonitor.enabled", "server.metrics.serviceMonitor.additionalLabels",
        "repoServer.replicas", "repoServer.metrics.enabled", "repoServer.metrics.serviceMonitor.enabled",
        "repoServer.metrics.serviceMonitor.additionalLabels", "applicationSet.replicas",
    },
    "argo-rollouts": {
        "controller.replicas", "controller.metrics.enabled", "controller.metrics.serviceMonitor.enabled",
        "controller.metrics.serviceMonitor.additionalLabels", "controller.resources", "containerSecurityContext",
        "dashboard.enabled", "controller.initContainers", "controller.volumes", "controller.volumeMounts",
        "controller.trafficRouterPlugins",
    },
    "kube-prometheus-stack": {
        "prometheus.prometheusSpec.retention", "prometheus.prometheusSpec.storageSpec",
        "prometheus.prometheusSpec.ruleSelectorNilUsesHelmValues",
        "prometheus.prometheusSpec.serviceMonitorSelectorNilUsesHelmValues",
        "prometheus.prometheusSpec.podMonitorSelectorNilUsesHelmValues", "prometheus.prometheusSpec.resources",
        "alertmanager.config", "grafana.enabled", "grafana.sidecar.dashboards.enabled",
        "grafana.sidecar.dashboards.label", "grafana.sidecar.dashboards.labelValue",
        "grafana.sidecar.dashboards.searchNamespace", "prometheus-node-exporter.namespaceOverride",
        # Managed control planes (EKS, GKE): values.yaml gates each ServiceMonitor and its Down alert on these.
        "kubeControllerManager.enabled", "kubeScheduler.enabled", "kubeEtcd.enabled", "kubeProxy.enabled",
    },
    "gpu-operator": {
        "driver.enabled", "toolkit.enabled", "daemonsets.tolerations",
        "dcgmExporter.enabled", "dcgmExporter.serviceMonitor.enabled", "dcgmExporter.serviceMonitor.interval",
        "dcgmExporter.serviceMonitor.additionalLabels", "mig.strategy", "migManager.enabled",
        "devicePlugin.config.name", "devicePlugin.config.default",
        # GKE only: the paths and CDI settings GKE setups pass to the operator (see module docstring).
        "hostPaths.driverInstallDir", "toolkit.installDir", "cdi.enabled", "cdi.default",
    },
    "nvidia-device-plugin": {"tolerations", "nodeSelector", "migStrategy", "gfd.enabled", "config.name",
                             "config.default"},
    "dcgm-exporter": {"tolerations", "nodeSelector", "serviceMonitor.enabled", "serviceMonitor.interval",
                      "serviceMonitor.additionalLabels", "extraHostVolumes", "extraVolumeMounts", "extraEnv",
                      # GKE: values.yaml's container securityContext, made privileged.
                      "securityContext.privileged", "securityContext.allowPrivilegeEscalation",
                      "securityContext.runAsNonRoot", "securityContext.runAsUser", "securityContext.capabilities.add"},
    "zot": {
        "persistence", "pvc.create", "pvc.accessModes", "pvc.storage", "pvc.storageClassName", "service.type",
        "service.port", "service.nodePort", "mountConfig", "configFiles.[config.json]", "mountSecret",
        "secretFiles.htpasswd", "serviceHeadless.enabled", "podSecurityContext", "securityContext", "resources",
    },
    "fake-gpu-operator": {"topology.nodePoolLabelKey", "topology.nodePools"},
    "cert-manager": {"crds.enabled", "config.apiVersion", "config.kind", "config.enableGatewayAPI"},
    "gateway-helm": set(),
    # env and extraArgs (a map rendered as --key=value, templates/deployment.yaml): values.yaml at 1.21.1;
    # tests/unit/charts/test_dns_identity_charts.py shows both reach the container.
    "external-dns": {"provider.name", "sources", "domainFilters", "policy", "registry", "txtOwnerId", "env",
                     "extraArgs.zone-id-filter"},
    "kserve-crd": set(),
    "kserve-resources": {"kserve.controller.deploymentMode"},
    # aws/karpenter-provider-aws charts/karpenter/values.yaml at v1.14.1 (shared/charts/karpenter-1.14.1).
    "karpenter": {"serviceAccount.name", "settings.clusterName", "settings.interruptionQueue",
                  "controller.resources", "nodeSelector"},
    "karpenter-crd": set(),
    # kubernetes-sigs/metrics-server charts/metrics-server/values.yaml at 3.13.1.
    "metrics-server": {"resources", "nodeSelector", "args", "replicas", "podDisruptionBudget.enabled",
                       "podDisruptionBudget.minAvailable"},
    # kubernetes/autoscaler cluster-autoscaler/charts/cluster-autoscaler/values.yaml at 9.59.0.
    "cluster-autoscaler": {"cloudProvider", "awsRegion", "autoDiscovery.clusterName", "rbac.serviceAccount.create",
                           "rbac.serviceAccount.name", "extraArgs", "resources", "securityContext",
                           "containerSecurityContext", "nodeSelector"},
}
def _leaves(values: Any, prefix: str = "") -> set[str]:
    # Free-form data under a pinned key (labels, tolerations, configs) is covered by the key's prefix.
    if not isinstance(values, dict) or not values:
        return {prefix}
    paths: set[str] = set()
    for key, value in values.items():
        segment = f"[{key}]" if "." in key else key
        path = f"{prefix}.{segment}" if prefix else segment
        paths |= _leaves(value, path)
    return paths


def _all_releases() -> dict[str, list[dict[str, Any]]]:
    by_chart: dict[str, list[dict[str, Any]]] = {}
    for name in ("kind-dev", "eks-prod", "gke-prod"):
        for release in synthesised(name).releases.values():
            by_chart.setdefault(release["chart"].rsplit("/", 1)[-1], []).append(release)
    # No example runs the operator with time-slicing or names a storage class; render those too.
    gke = synthesised("gke-prod").blueprint
    sliced = gke.model_copy(update={"gpu_stack": gke.gpu_stack.model_copy(update={"mode": "operator"})})
    by_chart["gpu-operator"].append({"name": "gpu-operator-time-slicing", "values": gpu.operator_values(sliced)})
    # GKE leaves the device plugin to GKE; an existing cluster runs NVIDIA's standalone plugin.
    onprem = gke.model_copy(update={
        "cluster": ExistingCluster(kind="existing", context="onprem"),
        "node_pools": [pool.model_copy(update={"instance_type": None}) for pool in gke.node_pools],
    })
    by_chart.setdefault("nvidia-device-plugin", []).append(
        {"name": "nvidia-device-plugin", "values": gpu.device_plugin_values(onprem)})
    eks = synthesised("eks-prod").blueprint
    classed = eks.model_copy(update={"registry": eks.registry.model_copy(update={"storage_class": "gp3"})})
    by_chart["zot"].append({"name": "zot-storage-class", "values": registry.zot_values(classed, "htpasswd")})
    # No example asks for the Cluster Autoscaler instead of Karpenter.
    scaled = eks.model_copy(update={"cluster": eks.cluster.model_copy(update={"autoscaling": "cluster-autoscaler"})})
    by_chart["cluster-autoscaler"] = [{"name": "cluster-autoscaler",
                                       "values": nodepools.cluster_autoscaler_values(scaled)}]
    return by_chart


@pytest.mark.parametrize("chart", sorted(DOCUMENTED))
def test_every_value_path_set_is_a_documented_chart_key(chart):
    releases = _all_releases()
    if chart not in releases:
        pytest.skip(f"no example blueprint installs {chart}")
    for release in releases[chart]:
        set_paths = _leaves(release["values"]) - {""}
        undocumented = {path for path in set_paths
                        if not any(path == known or path.startswith(known + ".") for known in DOCUMENTED[chart])}
        assert not undocumented, f"{chart}: paths not checked against the chart's values: {sorted(undocumented)}"


def test_table_paths_resolve_in_at_least_one_release():
    releases = _all_releases()
    for chart, paths in DOCUMENTED.items():
        for path in paths:
            found = []
            for release in releases.get(chart, []):
                try:
                    dotted(release["values"], path)
                    found.append(release["name"])
                except KeyError:
                    pass
            assert found or chart not in releases, f"{chart}: {path} is pinned but no release sets it"
