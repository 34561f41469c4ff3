"""Every pinned Helm chart and image Shipway installs, in one place, one version each.

Bump a pin here and nowhere else; a test fails if any release bypasses this module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chart:
    """A Helm chart pinned to one version."""

    name: str
    repo: str
    version: str

    @property
    def is_oci(self) -> bool:
        """Whether the chart lives in an OCI registry rather than an HTTP chart repo."""
        return self.repo.startswith("oci://")

    @property
    def ref(self) -> str:
        """The chart reference as `helm install` takes it."""
        return f"{self.repo}/{self.name}" if self.is_oci else self.name


ARGO_CD = Chart("argo-cd", "https://argoproj.github.io/argo-helm", "10.1.1")
ARGO_ROLLOUTS = Chart("argo-rollouts", "https://argoproj.github.io/argo-helm", "2.41.0")
KUBE_PROMETHEUS_STACK = Chart("kube-prometheus-stack", "https://prometheus-community.github.io/helm-charts", "88.5.3")
GPU_OPERATOR = Chart("gpu-operator", "https://helm.ngc.nvidia.com/nvidia", "v26.7.0")
NVIDIA_DEVICE_PLUGIN = Chart("nvidia-device-plugin", "https://nvidia.github.io/k8s-device-plugin", "0.20.0")
DCGM_EXPORTER = Chart("dcgm-exporter", "https://nvidia.github.io/dcgm-exporter/helm-charts", "4.8.2")
FAKE_GPU_OPERATOR = Chart("fake-gpu-operator", "oci://ghcr.io/run-ai/fake-gpu-operator", "0.0.63")
ZOT = Chart("zot", "https://zotregistry.dev/helm-charts", "0.1.122")
KSERVE_CRD = Chart("kserve-crd", "oci://ghcr.io/kserve/charts", "v0.17.1")
KSERVE = Chart("kserve", "oci://ghcr.io/kserve/charts", "v0.17.1")
CERT_MANAGER = Chart("cert-manager", "https://charts.jetstack.io", "v1.19.4")

CHARTS: dict[str, Chart] = {
    chart.name: chart
    for chart in (
        ARGO_CD, ARGO_ROLLOUTS, KUBE_PROMETHEUS_STACK, GPU_OPERATOR, NVIDIA_DEVICE_PLUGIN, DCGM_EXPORTER,
        FAKE_GPU_OPERATOR, ZOT, KSERVE_CRD, KSERVE, CERT_MANAGER,
    )
}

# The Shipway image: the sidecar and the artifact-pull init container run from it.
SHIPWAY_IMAGE = "ghcr.io/shipway-dev/shipway:0.1.0"

# The Prometheus stack's release name; its ServiceMonitor selector label matches it.
PROMETHEUS_RELEASE = "kube-prometheus-stack"
